"""A batch: many WebUI actions (the same do_* functions) as one change of the configuration.

Inside `batch(user)`: one transaction; each action writes its own audit line ("<user> (API
key <name>)" when the user came from a key: api.keys.user_for); one configuration generation,
one apply request and one revision for the whole batch (core.audit.one_change). An exception
rolls everything back, and then nothing is applied. Work outside the database (a restart, a
resolver file written by the dataplane worker) is queued with `after_commit` and done only
once the batch has committed, so a rolled-back batch leaves no trace.
"""

import contextlib

from django.db import transaction

from core.audit import one_change

SUMMARY_SHOWN = 3  # actions named in the revision's words; the rest are counted


def summary(actions, via):
    """The revision's words: "API v2: added virtual service A …, and 1,998 more changes"."""
    shown = "; ".join(actions[:SUMMARY_SHOWN])
    more = len(actions) - SUMMARY_SHOWN
    return f"{via}: {shown}" + (f"; and {more:,} more changes" if more > 0 else "")


class Batch:
    def after_commit(self, effect):
        """Run `effect()` once the batch committed (after the apply request; in order), or
        never if it rolled back. The effect tells its own failures (a worker that did not
        answer) in its call's answer: it must not raise, the change is saved by then."""
        transaction.on_commit(effect)


@contextlib.contextmanager
def batch(user, via="API"):
    """`with batch(request_user, "API v2") as b:` run do_* actions; see the module's words."""
    with one_change(user, lambda actions: summary(actions, via)):
        yield Batch()
