"""The person's own voice at the end of a transition: reading their reply as feedback."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "4", "4 - thanks", "2. not sure who to call": a leading 1–5 is the rating, the rest a comment.
_LEADING_RATING = re.compile(r"^\s*([1-5])(?:\s*(?:[-.,:;!)/]|\s)\s*(.*))?\s*$", re.DOTALL)


@dataclass(frozen=True)
class Feedback:
    rating: int | None  # how confident they feel about what happens next, 1–5
    comment: str


def read_feedback(text: str) -> Feedback:
    found = _LEADING_RATING.match(text)
    if found:
        return Feedback(rating=int(found.group(1)), comment=(found.group(2) or "").strip()[:1000])
    return Feedback(rating=None, comment=text.strip()[:1000])


def is_low_score(rating: int | None, at_or_below: int) -> bool:
    return rating is not None and rating <= at_or_below
