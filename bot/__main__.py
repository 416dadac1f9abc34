"""Command line: `python -m bot run|web|train|migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.launcher import LaunchError, ensure_model, run_forever
from bot.policy import PolicyError, load_policy
from bot.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Makana support assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="train if needed, start Rasa, actions and the web service; Ctrl-C stops all")
    commands.add_parser("web", help="run only the web service")
    commands.add_parser("train", help="train the Rasa model if its training data changed")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("check-policy", help="validate the support policy file")
    commands.add_parser(
        "scrub", help="remove secrets (cards, passwords, keys) from stored conversations and tickets, then purge old copies"
    )
    add = commands.add_parser("add-faq", help="add an FAQ entry to the knowledge base and rebuild the index")
    add.add_argument("--id", required=True)
    add.add_argument("--title", required=True)
    add.add_argument("--question", action="append", required=True, help="a phrasing; repeat for several")
    add.add_argument("--answer", required=True, help="Markdown; may quote policy values as {{ name }}")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command != "train":
            load_policy(settings.policy_path)  # fail fast, with the field and line
        if args.command == "run":
            from bot.migrations import upgrade

            upgrade(settings.database_url)
            return run_forever(settings)
        if args.command == "web":
            from bot.web.app import serve

            asyncio.run(serve(settings))
            return 0
        if args.command == "train":
            ensure_model(settings)
            return 0
        if args.command == "migrate":
            from bot.migrations import upgrade

            upgrade(settings.database_url)
            print("database schema is up to date")
            return 0
        if args.command == "add-faq":
            from bot.faq_admin import add_entry
            from kb_index.knowledge import KnowledgeError

            try:
                count = add_entry(
                    settings.kb_dir, settings.index_dir, load_policy(settings.policy_path),
                    args.id, args.title, args.question, args.answer,
                )
            except (KnowledgeError, KeyError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"added {args.id}; the index now has {count} entries (running servers pick it up on the next question)")
            return 0
        if args.command == "scrub":
            from bot.scrub import scrub

            report = asyncio.run(scrub(settings.database_url, settings.tracker_store_url))
            print(
                f"done: {report.events_changed} conversation events, {report.tickets_changed} tickets and "
                f"{report.notes_changed} notes rewritten"
            )
            return 0
        if args.command == "check-policy":
            print(f"{settings.policy_path}: valid")
            return 0
    except (PolicyError, SettingsError, LaunchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
