"""Options and values several command families share."""

from __future__ import annotations

import click

from ictq.config import comma_list

__all__ = ["comma_list", "json_option", "queue_option"]


queue_option = click.option("--queue", help="Queues, comma-separated (default: all).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
