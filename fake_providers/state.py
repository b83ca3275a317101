"""Everything one fake-provider app remembers; created by `create_app`, never shared between apps."""

from __future__ import annotations

from fake_providers.clock import Clock, RealClock
from fake_providers.ids import IdSource
from fake_providers.journal import Journal
from fake_providers.openai.files_store import FileStore
from fake_providers.openai.responses_store import ResponseStore
from fake_providers.options import FakeOptions
from fake_providers.reply import ReplyTracker
from fake_providers.script import ScriptBook


class FakeState:
    def __init__(self, options: FakeOptions, clock: Clock | None = None) -> None:
        self.options = options
        self.ids = IdSource(options.seed)
        self.journal = Journal(options.journal_limit)
        self.scripts = ScriptBook()
        self.replies = ReplyTracker(clock=clock or RealClock())
        self.responses = ResponseStore(options.responses_limit)
        self.files = FileStore()  # files and batches of the OpenAI surface

    def reset(self, *, seed: int | None = None, reseed: bool = False) -> None:
        """Forget the journal, every queued step and every stored response. Ids keep their sequence,
        unless `reseed`: then they start over from `seed` (None: random)."""
        self.journal.clear()
        self.scripts.clear()
        self.responses.clear()
        self.files.clear()
        if reseed:
            self.ids.reseed(seed)
