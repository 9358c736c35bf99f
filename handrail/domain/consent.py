"""Pure rules for reaching a person: consent, opt-out keywords, replies, frequency caps.

No I/O: the webhooks, the channels and the workflows all ask the same questions here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .policy import FrequencyCap

# Twilio's standard opt-out and opt-in keywords: Twilio itself stops delivering after these, so
# Handrail must record them too, or it would keep trying and keep failing with 21610.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT", "CANCEL"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
YES_WORDS = frozenset({"YES", "Y"})
NO_WORDS = frozenset({"NO", "N"})
CALLBACK_WORDS = frozenset({"CALLBACK"})  # what pressing 2 on the reminder call becomes


class ReplyKind(StrEnum):
    opt_out = "opt_out"
    opt_in = "opt_in"
    help = "help"
    yes = "yes"
    no = "no"
    callback = "callback"
    rating = "rating"
    free_text = "free_text"


@dataclass(frozen=True)
class ClassifiedReply:
    kind: ReplyKind
    keyword: str | None = None  # the keyword as matched, upper case
    rating: int | None = None  # 1..5 for a rating


def _normalise(text: str) -> str:
    # Phones add trailing punctuation and capitals ("Yes.", "stop!"); keywords are whole replies.
    return text.strip().strip(".!?,;: \t\r\n\"'").upper()


def classify_reply(text: str, *, opted_out: bool, opt_out_type: str | None = None) -> ClassifiedReply:
    """What a person's reply means. A keyword counts only as the whole reply, as at Twilio:
    "I can't stop worrying" is free text for the owner to read, not an opt-out.

    `opt_out_type` is Twilio's Advanced Opt-Out verdict (STOP, START, HELP) and wins when given.
    YES after an opt-out opts back in (Twilio does the same), otherwise it confirms."""
    verdict = (opt_out_type or "").strip().upper()
    word = _normalise(text)
    if verdict == "STOP":
        return ClassifiedReply(ReplyKind.opt_out, keyword=word or verdict)
    if verdict == "START":
        return ClassifiedReply(ReplyKind.opt_in, keyword=word or verdict)
    if verdict == "HELP":
        return ClassifiedReply(ReplyKind.help, keyword=word or verdict)
    if word in OPT_OUT_KEYWORDS:
        return ClassifiedReply(ReplyKind.opt_out, keyword=word)
    if word in OPT_IN_KEYWORDS or (opted_out and word in YES_WORDS):
        return ClassifiedReply(ReplyKind.opt_in, keyword=word)
    if word in HELP_KEYWORDS:
        return ClassifiedReply(ReplyKind.help, keyword=word)
    if word in YES_WORDS:
        return ClassifiedReply(ReplyKind.yes, keyword=word)
    if word in NO_WORDS:
        return ClassifiedReply(ReplyKind.no, keyword=word)
    if word in CALLBACK_WORDS:
        return ClassifiedReply(ReplyKind.callback, keyword=word)
    if len(word) == 1 and word in "12345":
        return ClassifiedReply(ReplyKind.rating, rating=int(word))
    return ClassifiedReply(ReplyKind.free_text)


class SendRefusal(StrEnum):
    no_consent = "no_consent"
    opted_out = "opted_out"
    no_number = "no_number"


def may_send(
    *, consent_to_messages: bool, opted_out_at: datetime | None, phone: str | None,
    phone_usable: bool,
) -> SendRefusal | None:
    """None when a message may go to this person; otherwise why not. An opt-out outranks a
    consent recorded earlier: the person's latest word is the one that counts."""
    if opted_out_at is not None:
        return SendRefusal.opted_out
    if not consent_to_messages:
        return SendRefusal.no_consent
    if not phone or not phone_usable:
        return SendRefusal.no_number
    return None


def may_update_carer(*, consent_given: bool, withdrawn_at: datetime | None,
                     phone: str | None) -> SendRefusal | None:
    """None when the person's named carer may receive an update; otherwise why not. It is the
    person's consent to keep this carer informed that counts, as it stands now (a withdrawal,
    by the person or by the carer's own STOP, outranks it); the person's consent to messages
    of their own is another matter."""
    if not consent_given or withdrawn_at is not None:
        return SendRefusal.no_consent
    if not phone:
        return SendRefusal.no_number
    return None


def next_send_time_under_cap(
    at: datetime, *, earlier_sends: Iterable[datetime], cap: FrequencyCap | None,
    is_reply: bool = False,
) -> datetime:
    """`at` itself when one more message keeps within the cap, else the earliest time it would.

    `earlier_sends` are the times of messages already sent or scheduled for this person (any
    transition). Messages go out in order, so the answer is never before the latest of them.
    A reply to the person's own message skips the minimum gap (they are waiting for the answer)
    but still counts towards the window's total."""
    if cap is None:
        return at
    earlier_sends = sorted(earlier_sends)
    candidate = max([at, *earlier_sends])
    window_sends = [t for t in earlier_sends if candidate - cap.window < t]
    if len(window_sends) >= cap.max_in_window:
        # Allowed again once enough of the oldest ones have left the rolling window.
        candidate = window_sends[len(window_sends) - cap.max_in_window] + cap.window
    if not is_reply and earlier_sends and candidate - earlier_sends[-1] < cap.min_gap:
        candidate = earlier_sends[-1] + cap.min_gap
    return candidate


def within_cap(
    at: datetime, *, earlier_sends: Iterable[datetime], cap: FrequencyCap | None,
    is_reply: bool = False,
) -> bool:
    return next_send_time_under_cap(at, earlier_sends=earlier_sends, cap=cap, is_reply=is_reply) == at
