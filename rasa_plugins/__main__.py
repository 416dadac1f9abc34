"""`python -m rasa_plugins <rasa arguments>`: Rasa's command line, with `--auth-token`
taken from SUPPORT_RASA_TOKEN.

A token given on the command line is visible to every local user in the process list;
the environment of a process is readable only by its owner.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    args = sys.argv[1:]
    token = os.environ.get("SUPPORT_RASA_TOKEN", "")
    if args[:1] == ["run"]:
        if not token:
            sys.exit("error: SUPPORT_RASA_TOKEN is not set; Rasa's HTTP API must not run without a token")
        # One argv item: a random token may begin with "-", which argparse would read as an option.
        args = [*args, f"--auth-token={token}"]
    sys.argv = ["rasa", *args]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
