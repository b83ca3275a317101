"""Ids of files and batches: they carry the provider and the provider's id, nothing else."""

from __future__ import annotations

import pytest

from gateway.openai_routes.objects import mint, where


@pytest.mark.parametrize("kind", ["files", "batches"])
def test_an_id_carries_its_provider_and_upstream_id(kind: str) -> None:
    minted = mint(kind, "fake-openai", "file-abc123")  # type: ignore[arg-type]
    assert minted.startswith("file-" if kind == "files" else "batch_")
    assert where(kind, minted) == ("fake-openai", "file-abc123")  # type: ignore[arg-type]


@pytest.mark.parametrize("foreign", ["file-abc", "batch_abc", "file-", "file-!!!!", "file-" + "Zm9v"])
def test_ids_the_gateway_did_not_mint_are_not_found(foreign: str) -> None:
    assert where("files", foreign) is None
