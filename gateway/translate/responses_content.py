"""Responses message items -> Chat messages (roles and content parts).

Content made only of text goes as one plain string, whatever the role: servers whose chat
templates take only strings (llama.cpp, several vLLM templates) would otherwise see an empty
turn. Assistant parts are joined as they are (they are pieces of one answer), the parts of other
roles with a newline. Only user content holding an image or a file stays a list of parts.
``system`` and ``developer`` messages may hold only text; user images must come as
``image_url`` and files as ``file_data`` or ``file_id``. With ``developer_role=False`` (the
upstream does not know that role) a ``developer`` message goes as ``system``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.translate.errors import TranslationError

TEXT_PART_TYPES = frozenset({"input_text", "output_text", "text"})


def chat_message(item: Mapping[str, Any], *, developer_role: bool = True) -> dict[str, Any]:
    role = item.get("role")
    content = item.get("content")
    if role == "assistant":
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        pieces: list[str] = []
        for part in content or ():
            kind = part.get("type")
            if kind in TEXT_PART_TYPES:
                pieces.append(part.get("text") or "")
            elif kind == "refusal":
                pieces.append(part.get("refusal") or "")
            else:
                raise TranslationError(f"Assistant content of type {kind!r} is not supported.", param="input")
        return {"role": "assistant", "content": "".join(pieces)}
    if role in ("system", "developer"):
        chat_role = role if developer_role else "system"
        if isinstance(content, str):
            return {"role": chat_role, "content": content}
        texts: list[str] = []
        for part in content or ():
            if part.get("type") not in TEXT_PART_TYPES:
                raise TranslationError(f"{role} messages can only contain text.", param="input")
            texts.append(part.get("text") or "")
        return {"role": chat_role, "content": "\n".join(texts)}
    if role == "user":
        if isinstance(content, str):
            return {"role": "user", "content": content}
        parts = [chat_user_part(part) for part in content or ()]
        lines: list[str] = []
        for part in parts:
            if part["type"] != "text":
                return {"role": "user", "content": parts}
            lines.append(part["text"])
        return {"role": "user", "content": "\n".join(lines)}
    raise TranslationError(f"Unsupported message role {role!r}.", param="input")


def chat_user_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind in TEXT_PART_TYPES:
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not url:
            raise TranslationError(
                "Images given by file_id are not supported by this model; send image_url.", param="input"
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_url"):
            raise TranslationError(
                "Files given by file_url are not supported by this model; send file_data.", param="input"
            )
        file = {key: part[key] for key in ("file_data", "file_id", "filename") if part.get(key) is not None}
        return {"type": "file", "file": file}
    raise TranslationError(f"Input content of type {kind!r} is not supported by this model.", param="input")
