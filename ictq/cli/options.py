"""Options and values several command families share."""

from __future__ import annotations

import click


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; nothing -> ``[]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


queue_option = click.option("--queue", help="Queues, comma-separated (default: all).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
