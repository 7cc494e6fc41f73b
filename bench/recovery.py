"""Recovery figures on a stack of its own (root, network namespaces): kill -9 Redis, Halt the
primary; print {"halt_with_redis_down_ms": ..., "redis_back_s": ...} (targets < 1000 ms, < 5 s).
Run: .venv/bin/python -m bench.recovery"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.conftest import running_stack  # noqa: E402
from tests.netns.test_recovery import SETUP, halt_with_redis_down, served_by  # noqa: E402
from tests.stacks import in_stack, wait_for  # noqa: E402


def main():
    with running_stack() as stack:
        server = in_stack(stack, SETUP)
        assert wait_for(lambda: served_by(stack) == "primary", 20)
        halt_ms, redis_back_s = halt_with_redis_down(stack, server)
    print(json.dumps({"halt_with_redis_down_ms": round(halt_ms), "redis_back_s":
                      round(redis_back_s, 2)}))


if __name__ == "__main__":
    main()
