"""The SQL functions' refusals, reworded in the command line's own terms.

The functions speak to SQL callers (``register it first with func_upsert_hub_user``,
``row_limit must be between 1 and 1000``); a person at a shell typed flags and
subcommands, so the CLI names those instead. Only the wording changes: what is wrong
and what is accepted stay exactly as the database said them.
"""

from __future__ import annotations

import re

# (pattern, replacement) in order; each pattern matches the functions' own phrasing.
_REWORDINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (
            r"register it first with func_upsert_hub_user(\(user_id, organization_id\))?",
            "register it first with `orchestrator jobs users add USER --org ORGANIZATION`",
        ),
        (
            r"a string naming a user registered with func_upsert_hub_user",
            "a user added with `orchestrator jobs users add`",
        ),
        (r"\brow_limit must be", "--limit must be"),
        (r"^priority must be", "--priority must be"),
        (r"^max_attempts must be", "--max-attempts must be"),
        (r"^estimated_cost must be", "--cost must be"),
        (r"^min_estimated_cost must be", "--min-cost must be"),
        (r"^approval_ttl_seconds must be", "--ttl must be"),
        (r"^idempotency_key must be", "--idempotency-key must be"),
        (r"^max_running must be >= 0 \(or null to remove the limit\)",
         "--max-running must be 0 or more (or --remove to drop the limit)"),
        (r"^(decided_by|cancelled_by) must name", "--by must name"),
        (r"^unknown job status (.*); accepted:", r"--status \1 is not a job status; accepted:"),
        (r"^top must be between 1 and 1000",
         "--limit of --errors-summary must be between 1 and 1000"),
    )
)  # fmt: skip


def in_cli_terms(message: str) -> str:
    """``message`` with the SQL API's names replaced by the CLI's flags and commands."""
    for pattern, replacement in _REWORDINGS:
        message = pattern.sub(replacement, message)
    return message
