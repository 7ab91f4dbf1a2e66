"""The consent ledger: an append-only, hash-chained history of one contact's SMS consent.

Consent is the product's licence to operate (contract sms.md §6): every change is an event
that says who changed it, from where, when, and what the shopper was shown. Events chain
by SHA-256 so that `verify_chain` detects an edited, reordered or deleted stored row (all
but deleting the newest rows, which needs the tail kept elsewhere).

State machine (one contact, one shop); a source may cause any allowed move unless noted:

    unknown      -> pending | subscribed | unsubscribed | redacted
    pending      -> subscribed | unsubscribed | redacted   (pending again: see below)
    subscribed   -> unsubscribed | redacted
    unsubscribed -> pending | subscribed                   (only by a new explicit act)
    unsubscribed -> redacted
    redacted     -> nothing (terminal)

- `unknown` is only the initial state: nothing moves back to it.
- `subscribed -> pending` is refused: a confirmed contact cannot be "unconfirmed".
- Leaving `unsubscribed` needs a new explicit act, see `EXPLICIT_ACT_SOURCES`; opting out
  is allowed from every source, because honouring a STOP is never the risky direction.
- A move to the same state is a no-op (no event), except a `pending` re-request from the
  shopper, see `PENDING_RENEWAL_SOURCES`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from types import MappingProxyType

from domain.errors import DomainError, InvalidValue


class ConsentState(enum.StrEnum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    REDACTED = "redacted"


class ConsentSource(enum.StrEnum):
    STOREFRONT_FORM = "storefront_form"
    CHECKOUT = "checkout"
    SHOPIFY = "shopify"
    KEYWORD = "keyword"
    ADMIN = "admin"
    API = "api"
    IMPORT = "import"
    DOUBLE_OPT_IN = "double_opt_in"


class OptInLevel(enum.StrEnum):
    """Shopify's M3AAWG opt-in levels (contract shopify.md §6.1)."""

    SINGLE_OPT_IN = "single_opt_in"
    CONFIRMED_OPT_IN = "confirmed_opt_in"
    UNKNOWN = "unknown"


# The `previous_hash` of a contact's first event: the chain has to start somewhere fixed.
GENESIS_HASH = "0" * 64

# Sources that count as a *new explicit act of the shopper* and may therefore lift an
# opt-out. The law (and carriers) let us text someone who opted out again only when that
# person asked again; so the test is "did the shopper themself just do something?":
# - storefront_form: they submitted our sign-up form (unticked box, wording recorded);
# - checkout: they ticked the SMS box in checkout again;
# - keyword: they texted START / UNSTOP / YES to our number;
# - double_opt_in: they replied Y to a confirmation request;
# - shopify: Shopify recorded a new opt-in collected elsewhere (its checkout, POS, another
#   app). Only if it is new: `evidence["consent_updated_at"]` (ISO-8601, aware) must be later
#   than the opt-out we hold, so a stale or retried webhook can never undo a STOP;
# - admin: a merchant says the shopper opted in outside our channels (paper form, in
#   person). Only with written proof in `evidence["proof"]`, because otherwise it is a
#   merchant's wish, not a shopper's act.
# Never `import` (a list is old data, not a new act: it could re-subscribe every person
# who ever texted STOP) and never `api` (a machine caller cannot show that a person acted).
EXPLICIT_ACT_SOURCES = frozenset(
    {
        ConsentSource.STOREFRONT_FORM,
        ConsentSource.CHECKOUT,
        ConsentSource.KEYWORD,
        ConsentSource.DOUBLE_OPT_IN,
        ConsentSource.SHOPIFY,
        ConsentSource.ADMIN,
    }
)
ADMIN_PROOF_KEY = "proof"
SHOPIFY_UPDATED_AT_KEY = "consent_updated_at"

# `pending → pending` is recorded (a new event) only when the shopper asked again through
# one of these: each such request carries its own wording, IP and time, and triggers a new
# "Reply Y" text, so the ledger must show why a second confirmation request went out. The
# same state from Shopify, an import, the API or an admin says nothing new (often it is
# Shopify echoing our own write back), so it stays a no-op.
PENDING_RENEWAL_SOURCES = frozenset(
    {ConsentSource.STOREFRONT_FORM, ConsentSource.CHECKOUT, ConsentSource.KEYWORD}
)


class InvalidConsentTransition(DomainError):
    """The consent state machine refuses this change; nothing was recorded."""

    code = "invalid-consent-transition"

    def __init__(
        self, from_state: ConsentState, to_state: ConsentState, source: ConsentSource, why: str
    ) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.source = source
        super().__init__(
            f"consent cannot change from {from_state.value} to {to_state.value} "
            f"via {source.value}: {why}"
        )


def _aware_iso(value: str) -> datetime | None:
    """Parse an ISO-8601 timestamp; None when missing, malformed or naive."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _not_after(at: datetime | None, since: datetime | None) -> bool:
    return at is not None and since is not None and at <= since


def check_transition(
    current: ConsentState,
    new: ConsentState,
    source: ConsentSource,
    *,
    evidence: Mapping[str, str] | None = None,
    current_since: datetime | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """True when the change must be recorded, False for a no-op; raise when refused.

    `current_since` is when the contact entered `current` (the last event's `occurred_at`);
    it is what a Shopify re-subscribe's `consent_updated_at` and a checkout's time
    (`occurred_at`) must be later than.
    """
    current, new, source = ConsentState(current), ConsentState(new), ConsentSource(source)
    evidence = evidence or {}

    def refuse(why: str) -> InvalidConsentTransition:
        return InvalidConsentTransition(current, new, source, why)

    if current is ConsentState.REDACTED:
        if new is ConsentState.REDACTED:
            return False  # redaction requests repeat (Shopify retries); idempotent
        raise refuse("redacted is terminal")
    if new is current:
        return new is ConsentState.PENDING and source in PENDING_RENEWAL_SOURCES
    if new is ConsentState.UNKNOWN:
        raise refuse("unknown is only the initial state")
    if new is ConsentState.REDACTED:
        return True
    if source is ConsentSource.DOUBLE_OPT_IN and current is not ConsentState.PENDING:
        # A "Reply Y" text or its link stays in the phone after a STOP: it answers the
        # sign-up it was sent for, never a later opt-out.
        raise refuse("a confirmation confirms only a pending sign-up")
    if current is ConsentState.SUBSCRIBED and new is ConsentState.PENDING:
        raise refuse("a confirmed subscription cannot go back to pending")
    if current is ConsentState.UNSUBSCRIBED:  # new is pending or subscribed
        if source not in EXPLICIT_ACT_SOURCES:
            raise refuse("re-subscribing after an opt-out needs a new explicit act by the shopper")
        if source is ConsentSource.ADMIN and not evidence.get(ADMIN_PROOF_KEY, "").strip():
            raise refuse(
                f"an admin re-subscribe needs written proof in evidence[{ADMIN_PROOF_KEY!r}]"
            )
        if source is ConsentSource.SHOPIFY:
            updated_at = _aware_iso(evidence.get(SHOPIFY_UPDATED_AT_KEY, ""))
            if updated_at is None:
                raise refuse(
                    f"a Shopify re-subscribe needs evidence[{SHOPIFY_UPDATED_AT_KEY!r}] "
                    "as an ISO-8601 time with an offset"
                )
            if _not_after(updated_at, current_since):
                raise refuse("Shopify's opt-in is not newer than the opt-out we hold")
        if source is ConsentSource.CHECKOUT and _not_after(occurred_at, current_since):
            # Checkout webhooks arrive late and repeat: a box ticked before the STOP is the
            # act the STOP withdrew, not a new one.
            raise refuse("the checkout's opt-in is not newer than the opt-out we hold")
    # Remaining moves: unknown → pending/subscribed/unsubscribed, pending → subscribed/
    # unsubscribed, subscribed → unsubscribed, and explicit re-subscribes.
    return True


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One recorded consent change. Every field except `hash` is covered by `hash`."""

    contact_id: uuid.UUID
    sequence: int  # 1-based per contact
    previous_state: ConsentState
    new_state: ConsentState
    source: ConsentSource
    actor: str  # who acted: "shopper", "shopify", "admin:<user id>", "import:<job id>"
    occurred_at: datetime  # UTC aware
    wording: str | None  # the exact text shown to the shopper
    ip_hash: str | None
    user_agent: str | None
    opt_in_level: OptInLevel | None
    evidence: Mapping[str, str] = field(hash=False)  # non-PII proof (form id, Shopify time)
    previous_hash: str  # hex; GENESIS_HASH for sequence 1
    hash: str

    def __post_init__(self) -> None:
        # A frozen event should not be mutable through its mapping either.
        object.__setattr__(self, "evidence", MappingProxyType(dict(self.evidence)))


@dataclass(frozen=True, slots=True)
class ChainVerification:
    valid: bool
    checked: int  # events that passed every check before the first failure (all if valid)
    first_bad_sequence: int | None  # 1-based position (expected sequence) of the first failure
    reason: str | None


def _utc_iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise InvalidValue("consent times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(value: object) -> object:
    if isinstance(value, enum.Enum):  # before str: StrEnum members are also str
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _utc_iso(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def event_hash(event: ConsentEvent) -> str:
    """SHA-256 hex of the canonical JSON of every field except `hash` (incl. `previous_hash`).

    Fields are enumerated from the dataclass, so a field added later is covered without
    anyone remembering to. Canonical form: sorted keys, no whitespace, UTF-8 (not ASCII
    escapes), times as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, UUIDs as str, enums as values.
    """
    payload = {
        f.name: _canonical(getattr(event, f.name)) for f in fields(event) if f.name != "hash"
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate must hash deterministically rather than crash verification.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def next_event(
    history_tail: ConsentEvent | None,
    *,
    contact_id: uuid.UUID,
    current_state: ConsentState,
    new_state: ConsentState,
    source: ConsentSource,
    actor: str,
    occurred_at: datetime,
    wording: str | None = None,
    ip_hash: str | None = None,
    user_agent: str | None = None,
    opt_in_level: OptInLevel | None = None,
    evidence: Mapping[str, str] | None = None,
) -> ConsentEvent | None:
    """The event to append after `history_tail`, or None when the change is a no-op.

    Raises `InvalidConsentTransition` when the state machine refuses the change and
    `InvalidValue` when the inputs are inconsistent (naive time, a `current_state` that
    disagrees with the ledger, a blank actor, non-string evidence).
    """
    if occurred_at.tzinfo is None:
        raise InvalidValue("occurred_at must be timezone-aware")
    if not actor.strip():
        raise InvalidValue("a consent change needs an actor")
    evidence = dict(evidence or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in evidence.items()):
        raise InvalidValue("consent evidence keys and values must be strings")
    current_state = ConsentState(current_state)
    # The caller's cached state must agree with the ledger, or we would chain an event whose
    # previous_state is a lie and `verify_chain` would reject the whole history afterwards.
    if history_tail is None:
        if current_state is not ConsentState.UNKNOWN:
            raise InvalidValue("a contact without consent history must be in state unknown")
    else:
        if history_tail.contact_id != contact_id:
            raise InvalidValue("the history tail belongs to another contact")
        if history_tail.new_state != current_state:
            raise InvalidValue("current_state disagrees with the consent ledger")

    if not check_transition(
        current_state,
        new_state,
        source,
        evidence=evidence,
        current_since=history_tail.occurred_at if history_tail else None,
        occurred_at=occurred_at,
    ):
        return None
    draft = ConsentEvent(
        contact_id=contact_id,
        sequence=history_tail.sequence + 1 if history_tail else 1,
        previous_state=current_state,
        new_state=ConsentState(new_state),
        source=ConsentSource(source),
        actor=actor,
        occurred_at=occurred_at.astimezone(UTC),
        wording=wording,
        ip_hash=ip_hash,
        user_agent=user_agent,
        opt_in_level=OptInLevel(opt_in_level) if opt_in_level is not None else None,
        evidence=evidence,
        previous_hash=history_tail.hash if history_tail else GENESIS_HASH,
        hash="",
    )
    return replace(draft, hash=event_hash(draft))


def _first_problem(
    event: ConsentEvent, position: int, prior: ConsentEvent | None, contact_id: uuid.UUID
) -> str | None:
    if event.sequence != position:
        return f"expected sequence {position}, found {event.sequence}"
    if event.contact_id != contact_id:
        return "event belongs to another contact"
    expected_previous = prior.hash if prior else GENESIS_HASH
    if event.previous_hash != expected_previous:
        return "previous_hash does not match the prior event's hash"
    if event.occurred_at.tzinfo is None:
        return "occurred_at is naive"
    if event_hash(event) != event.hash:
        return "hash does not match the event's contents"
    expected_state = prior.new_state if prior else ConsentState.UNKNOWN
    if event.previous_state != expected_state:
        return f"previous_state {event.previous_state} does not follow {expected_state}"
    try:
        recorded = check_transition(
            event.previous_state,
            event.new_state,
            event.source,
            evidence=event.evidence,
            current_since=prior.occurred_at if prior else None,
            occurred_at=event.occurred_at,
        )
    except InvalidConsentTransition as refused:
        return str(refused)
    if not recorded:
        return "a no-op change was recorded as an event"
    return None


def verify_chain(events: Sequence[ConsentEvent]) -> ChainVerification:
    """Check one contact's whole history, in sequence order; never raises.

    Detects edited fields, deleted or reordered events and illegal transitions. It cannot
    detect removal of the *last* events: whoever stores the chain must also keep the tail's
    sequence and hash (e.g. on the contact row) and compare.
    """
    if not events:
        return ChainVerification(valid=True, checked=0, first_bad_sequence=None, reason=None)
    contact_id = events[0].contact_id
    prior: ConsentEvent | None = None
    for index, event in enumerate(events):
        position = index + 1
        try:
            problem = _first_problem(event, position, prior, contact_id)
        # A stored row can hold anything (an unknown enum value, a naive time): report, not raise.
        except (DomainError, ValueError, TypeError, AttributeError) as error:
            problem = f"malformed event: {error}"
        if problem is not None:
            return ChainVerification(
                valid=False, checked=index, first_bad_sequence=position, reason=problem
            )
        prior = event
    return ChainVerification(valid=True, checked=len(events), first_bad_sequence=None, reason=None)


_SHOPIFY_STATES = {
    "not_subscribed": ConsentState.UNKNOWN,
    "pending": ConsentState.PENDING,
    "subscribed": ConsentState.SUBSCRIBED,
    "unsubscribed": ConsentState.UNSUBSCRIBED,
    "redacted": ConsentState.REDACTED,
}


def stopped(state: ConsentState, history: Sequence[ConsentEvent]) -> bool:
    """Whether the shopper's last word was a STOP: unsubscribed, or pending since an opt-out
    (a form submitted for the number proves nothing until the phone itself replies)."""
    if state is not ConsentState.PENDING:
        return state is ConsentState.UNSUBSCRIBED
    for event in reversed(history):
        if event.new_state in (ConsentState.UNSUBSCRIBED, ConsentState.SUBSCRIBED):
            return event.new_state is ConsentState.UNSUBSCRIBED
    return False


def state_from_shopify(state: str | None) -> ConsentState | None:
    """Map Shopify's SMS marketing state (webhook lower case or GraphQL upper case).

    `not_subscribed` means "never subscribed", not "opted out", so it maps to UNKNOWN,
    which callers must treat as *no opinion*: never a transition, never an override of
    our own explicit state (passing it to `next_event` from any other state is refused).
    None for a missing or unrecognised value, so a state Shopify adds later is ignored
    rather than guessed at.
    """
    if state is None:
        return None
    return _SHOPIFY_STATES.get(state.strip().lower())


def opt_in_level_from_shopify(value: str | None) -> OptInLevel | None:
    """Map Shopify's `opt_in_level` / `marketingOptInLevel`; None when missing or unknown."""
    if value is None:
        return None
    try:
        return OptInLevel(value.strip().lower())
    except ValueError:
        return None
