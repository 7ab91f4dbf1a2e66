"""The consent ledger: transitions, explicit-act rules, the hash chain and its tamper evidence."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.consent import (
    GENESIS_HASH,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    InvalidConsentTransition,
    OptInLevel,
    event_hash,
    next_event,
    opt_in_level_from_shopify,
    state_from_shopify,
    verify_chain,
)
from domain.errors import DomainError, InvalidValue

S = ConsentState
Src = ConsentSource
CONTACT = uuid.UUID("6f1c2a6e-7d1b-4a53-9a43-0c1f5b2d8e11")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# Which sources are a new explicit act of the shopper (written here independently of the
# module, as the specification the module must meet).
EXPLICIT = {Src.STOREFRONT_FORM, Src.CHECKOUT, Src.KEYWORD, Src.DOUBLE_OPT_IN}
PENDING_RENEWAL = {Src.STOREFRONT_FORM, Src.CHECKOUT, Src.KEYWORD}
PROOF = {"proof": "signed in-store paper form #1042"}


def step(
    tail: ConsentEvent | None,
    new: ConsentState,
    source: ConsentSource,
    *,
    at: datetime | None = None,
    evidence: dict[str, str] | None = None,
    **extra: object,
) -> ConsentEvent | None:
    """Apply one change after `tail` (the tail's state is the current state)."""
    at = at or (tail.occurred_at + timedelta(minutes=1) if tail else T0)
    return next_event(
        tail,
        contact_id=CONTACT,
        current_state=tail.new_state if tail else S.UNKNOWN,
        new_state=new,
        source=source,
        actor="tester",
        occurred_at=at,
        evidence=evidence,
        **extra,  # type: ignore[arg-type]
    )


def history_in(state: ConsentState) -> list[ConsentEvent]:
    """A valid history that leaves the contact in `state`."""
    path = {
        S.UNKNOWN: [],
        S.PENDING: [(S.PENDING, Src.STOREFRONT_FORM)],
        S.SUBSCRIBED: [(S.SUBSCRIBED, Src.CHECKOUT)],
        S.UNSUBSCRIBED: [(S.SUBSCRIBED, Src.CHECKOUT), (S.UNSUBSCRIBED, Src.KEYWORD)],
        S.REDACTED: [(S.SUBSCRIBED, Src.CHECKOUT), (S.REDACTED, Src.SHOPIFY)],
    }[state]
    events: list[ConsentEvent] = []
    for new, source in path:
        event = step(events[-1] if events else None, new, source)
        assert event is not None
        events.append(event)
    return events


def outcome(
    events: list[ConsentEvent],
    new: ConsentState,
    source: ConsentSource,
    evidence: dict[str, str] | None = None,
) -> str:
    try:
        event = step(events[-1] if events else None, new, source, evidence=evidence)
    except InvalidConsentTransition:
        return "refuse"
    return "noop" if event is None else "record"


# --- the transition table -------------------------------------------------------------------

TRANSITIONS = [
    # from unknown: the first word on a contact
    (S.UNKNOWN, S.UNKNOWN, Src.SHOPIFY, "noop"),
    (S.UNKNOWN, S.PENDING, Src.STOREFRONT_FORM, "record"),
    (S.UNKNOWN, S.SUBSCRIBED, Src.CHECKOUT, "record"),  # single opt-in at checkout
    (S.UNKNOWN, S.SUBSCRIBED, Src.DOUBLE_OPT_IN, "refuse"),  # nothing was pending
    (S.UNKNOWN, S.SUBSCRIBED, Src.SHOPIFY, "record"),
    (S.UNKNOWN, S.SUBSCRIBED, Src.IMPORT, "record"),  # migrating a consented list
    (S.UNKNOWN, S.UNSUBSCRIBED, Src.SHOPIFY, "record"),
    (S.UNKNOWN, S.UNSUBSCRIBED, Src.IMPORT, "record"),  # an imported opt-out
    (S.UNKNOWN, S.REDACTED, Src.SHOPIFY, "record"),
    # from pending
    (S.PENDING, S.UNKNOWN, Src.ADMIN, "refuse"),
    (S.PENDING, S.PENDING, Src.STOREFRONT_FORM, "record"),  # the shopper asked again
    (S.PENDING, S.PENDING, Src.CHECKOUT, "record"),
    (S.PENDING, S.PENDING, Src.KEYWORD, "record"),
    (S.PENDING, S.PENDING, Src.SHOPIFY, "noop"),  # Shopify echoing our own write
    (S.PENDING, S.PENDING, Src.IMPORT, "noop"),
    (S.PENDING, S.PENDING, Src.ADMIN, "noop"),
    (S.PENDING, S.SUBSCRIBED, Src.DOUBLE_OPT_IN, "record"),
    (S.PENDING, S.UNSUBSCRIBED, Src.KEYWORD, "record"),  # STOP before confirming
    (S.PENDING, S.REDACTED, Src.SHOPIFY, "record"),
    # from subscribed
    (S.SUBSCRIBED, S.UNKNOWN, Src.SHOPIFY, "refuse"),
    (S.SUBSCRIBED, S.PENDING, Src.STOREFRONT_FORM, "refuse"),
    (S.SUBSCRIBED, S.PENDING, Src.SHOPIFY, "refuse"),
    (S.SUBSCRIBED, S.SUBSCRIBED, Src.CHECKOUT, "noop"),
    (S.SUBSCRIBED, S.UNSUBSCRIBED, Src.KEYWORD, "record"),
    (S.SUBSCRIBED, S.UNSUBSCRIBED, Src.IMPORT, "record"),  # opting out is always allowed
    (S.SUBSCRIBED, S.UNSUBSCRIBED, Src.API, "record"),
    (S.SUBSCRIBED, S.REDACTED, Src.ADMIN, "record"),
    # from unsubscribed (re-subscribing has its own table below)
    (S.UNSUBSCRIBED, S.UNKNOWN, Src.IMPORT, "refuse"),
    (S.UNSUBSCRIBED, S.UNSUBSCRIBED, Src.KEYWORD, "noop"),
    (S.UNSUBSCRIBED, S.REDACTED, Src.SHOPIFY, "record"),
    # from redacted: terminal
    *[
        (S.REDACTED, new, src, "refuse")
        for new in (S.UNKNOWN, S.PENDING, S.SUBSCRIBED, S.UNSUBSCRIBED)
        for src in Src
    ],
    (S.REDACTED, S.REDACTED, Src.SHOPIFY, "noop"),  # Shopify retries customers/redact
]


@pytest.mark.parametrize(("current", "new", "source", "expected"), TRANSITIONS)
def test_transition_table(current, new, source, expected):
    assert outcome(history_in(current), new, source) == expected


def test_redacted_stays_terminal_even_for_proven_explicit_acts():
    events = history_in(S.REDACTED)
    assert outcome(events, S.SUBSCRIBED, Src.ADMIN, PROOF) == "refuse"
    assert outcome(events, S.SUBSCRIBED, Src.KEYWORD) == "refuse"


RESUBSCRIBE = [
    (Src.STOREFRONT_FORM, None, "record"),
    (Src.CHECKOUT, None, "record"),  # the box ticked again
    (Src.KEYWORD, None, "record"),  # START / UNSTOP
    (Src.DOUBLE_OPT_IN, None, "refuse"),  # an old confirmation link after the STOP
    (Src.IMPORT, None, "refuse"),  # an old list never lifts a STOP
    (Src.IMPORT, PROOF, "refuse"),
    (Src.API, None, "refuse"),
    (Src.API, PROOF, "refuse"),
    (Src.ADMIN, None, "refuse"),
    (Src.ADMIN, {"proof": "   "}, "refuse"),
    (Src.ADMIN, PROOF, "record"),
    (Src.SHOPIFY, None, "refuse"),  # no consent_updated_at: cannot show it is new
    (Src.SHOPIFY, {"consent_updated_at": "2026-05-01T12:00:00"}, "refuse"),  # naive
    (Src.SHOPIFY, {"consent_updated_at": "yesterday"}, "refuse"),
    (Src.SHOPIFY, {"consent_updated_at": "2026-04-01T00:00:00Z"}, "refuse"),  # before the STOP
    (Src.SHOPIFY, {"consent_updated_at": "2026-06-01T00:00:00Z"}, "record"),
]


@pytest.mark.parametrize("new", [S.SUBSCRIBED, S.PENDING])
@pytest.mark.parametrize(("source", "evidence", "expected"), RESUBSCRIBE)
def test_leaving_unsubscribed_needs_a_new_explicit_act(new, source, evidence, expected):
    assert outcome(history_in(S.UNSUBSCRIBED), new, source, evidence) == expected


def test_keyword_start_resubscribes_and_the_chain_still_verifies():
    events = history_in(S.UNSUBSCRIBED)
    event = step(events[-1], S.SUBSCRIBED, Src.KEYWORD, wording="START")
    assert event is not None
    assert (event.previous_state, event.new_state, event.sequence) == (
        S.UNSUBSCRIBED,
        S.SUBSCRIBED,
        3,
    )
    assert verify_chain([*events, event]).valid


def test_a_refusal_names_from_to_and_source():
    events = history_in(S.UNSUBSCRIBED)
    with pytest.raises(InvalidConsentTransition) as refused:
        step(events[-1], S.SUBSCRIBED, Src.IMPORT)
    error = refused.value
    assert isinstance(error, DomainError)
    assert error.code == "invalid-consent-transition"
    assert (error.from_state, error.to_state, error.source) == (
        S.UNSUBSCRIBED,
        S.SUBSCRIBED,
        Src.IMPORT,
    )
    message = str(error)
    assert "unsubscribed" in message and "subscribed" in message and "import" in message


def test_no_op_returns_none_and_writes_nothing():
    events = history_in(S.SUBSCRIBED)
    assert step(events[-1], S.SUBSCRIBED, Src.SHOPIFY) is None
    assert step(None, S.UNKNOWN, Src.SHOPIFY) is None


def test_first_event_starts_the_chain_from_genesis():
    event = step(None, S.PENDING, Src.STOREFRONT_FORM, wording="Reply Y to confirm")
    assert event is not None
    assert (event.sequence, event.previous_state, event.previous_hash) == (1, S.UNKNOWN, "0" * 64)
    assert event.previous_hash == GENESIS_HASH
    assert event.hash == event_hash(event)


def test_naive_time_is_refused():
    with pytest.raises(InvalidValue):
        step(None, S.SUBSCRIBED, Src.CHECKOUT, at=datetime(2026, 5, 1, 12))


def test_times_are_stored_in_utc():
    athens = timezone(timedelta(hours=3))
    event = step(None, S.SUBSCRIBED, Src.CHECKOUT, at=datetime(2026, 5, 1, 15, tzinfo=athens))
    assert event is not None
    assert event.occurred_at == T0 and event.occurred_at.tzinfo is UTC


def test_current_state_must_agree_with_the_ledger():
    events = history_in(S.SUBSCRIBED)
    with pytest.raises(InvalidValue):  # the contact row says pending, the ledger subscribed
        next_event(
            events[-1],
            contact_id=CONTACT,
            current_state=S.PENDING,
            new_state=S.UNSUBSCRIBED,
            source=Src.KEYWORD,
            actor="shopper",
            occurred_at=T0 + timedelta(hours=1),
        )
    with pytest.raises(InvalidValue):  # no history but a non-initial state
        next_event(
            None,
            contact_id=CONTACT,
            current_state=S.SUBSCRIBED,
            new_state=S.UNSUBSCRIBED,
            source=Src.KEYWORD,
            actor="shopper",
            occurred_at=T0,
        )
    with pytest.raises(InvalidValue):  # another contact's tail
        next_event(
            events[-1],
            contact_id=uuid.uuid4(),
            current_state=S.SUBSCRIBED,
            new_state=S.UNSUBSCRIBED,
            source=Src.KEYWORD,
            actor="shopper",
            occurred_at=T0 + timedelta(hours=1),
        )


def test_evidence_is_frozen_with_the_event():
    evidence = {"form_id": "footer"}
    event = step(None, S.PENDING, Src.STOREFRONT_FORM, evidence=evidence)
    assert event is not None
    evidence["form_id"] = "changed later"
    assert event.evidence == {"form_id": "footer"}
    with pytest.raises(TypeError):
        event.evidence["form_id"] = "x"  # type: ignore[index]


def test_event_hash_is_sha256_of_the_documented_canonical_json():
    """Pinned so another verifier (SQL, a script, an auditor) can recompute it."""
    event = step(
        None,
        S.SUBSCRIBED,
        Src.CHECKOUT,
        wording="Jä, Blossom texts: ≤4/mo",
        ip_hash="ab12",
        opt_in_level=OptInLevel.SINGLE_OPT_IN,
        evidence={"form_id": "f1", "b": "2"},
    )
    assert event is not None
    canonical = (
        '{"actor":"tester","contact_id":"6f1c2a6e-7d1b-4a53-9a43-0c1f5b2d8e11",'
        '"evidence":{"b":"2","form_id":"f1"},"ip_hash":"ab12","new_state":"subscribed",'
        '"occurred_at":"2026-05-01T12:00:00.000000+00:00","opt_in_level":"single_opt_in",'
        '"previous_hash":"' + "0" * 64 + '","previous_state":"unknown","sequence":1,'
        '"source":"checkout","user_agent":null,"wording":"Jä, Blossom texts: ≤4/mo"}'
    )
    assert event.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_empty_history_verifies():
    assert verify_chain([]).valid


def test_truncating_the_tail_is_not_detectable_by_the_chain_alone():
    """Documented limitation: the store must keep the tail's sequence and hash elsewhere."""
    events = history_in(S.UNSUBSCRIBED)
    assert verify_chain(events[:-1]).valid


def test_a_forbidden_transition_with_recomputed_hashes_is_still_rejected():
    """Someone rewriting a STOP into a re-subscribe by import is caught by the rules."""
    events = history_in(S.UNSUBSCRIBED)
    forged = replace(events[-1], new_state=S.SUBSCRIBED, source=Src.IMPORT, hash="")
    forged = replace(forged, hash=event_hash(forged))
    result = verify_chain([events[0], forged])
    assert (result.valid, result.first_bad_sequence) == (False, 2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("subscribed", S.SUBSCRIBED),
        ("SUBSCRIBED", S.SUBSCRIBED),
        ("unsubscribed", S.UNSUBSCRIBED),
        ("Pending", S.PENDING),
        ("REDACTED", S.REDACTED),
        ("not_subscribed", S.UNKNOWN),  # never subscribed: no opinion, not an opt-out
        ("NOT_SUBSCRIBED", S.UNKNOWN),
        (" subscribed ", S.SUBSCRIBED),
        (None, None),
        ("something_new", None),
    ],
)
def test_state_from_shopify(raw, expected):
    assert state_from_shopify(raw) is expected


def test_shopify_not_subscribed_can_never_override_our_state():
    events = history_in(S.SUBSCRIBED)
    shopify_says = state_from_shopify("not_subscribed")
    assert shopify_says is S.UNKNOWN
    with pytest.raises(InvalidConsentTransition):
        step(events[-1], shopify_says, Src.SHOPIFY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("single_opt_in", OptInLevel.SINGLE_OPT_IN),
        ("CONFIRMED_OPT_IN", OptInLevel.CONFIRMED_OPT_IN),
        ("unknown", OptInLevel.UNKNOWN),
        (None, None),
        ("triple_opt_in", None),
    ],
)
def test_opt_in_level_from_shopify(raw, expected):
    assert opt_in_level_from_shopify(raw) is expected


# --- properties ---------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None)

# Redacted is terminal, so it is drawn rarely to let chains grow long before it.
states = st.sampled_from([S.UNKNOWN, *[S.PENDING, S.SUBSCRIBED, S.UNSUBSCRIBED] * 4, S.REDACTED])
# The alphabet exercises the canonical JSON with non-ASCII, astral, quote and backslash.
wordings = st.none() | st.text(alphabet='aZ é€\u2019😀"\\\n', max_size=8)

# Data generation dominates run time, so the step's incidental fields are decoded from one
# drawn integer instead of a draw each; every combination stays reachable.
ACTORS = ["shopper", "shopify", "admin:7", "import:42", "api:key-3"]
IP_HASHES = [None, "9f86d0", "a1b2c3"]
USER_AGENTS = [None, "Mozilla/5.0", "curl/8"]
LEVELS = [None, *OptInLevel]
# Prefixed keys, so free evidence never collides with the rule keys `proof` and
# `consent_updated_at`, whose presence the step controls.
EXTRAS = [{}, {"x_form": "footer"}, {"x_é": '\u2019"\\'}, {"x_form": "popup", "x_é": "1"}]


@dataclass(frozen=True)
class Step:
    new: ConsentState
    source: ConsentSource
    gap: timedelta
    wording: str | None
    detail: int

    @property
    def proof(self) -> bool:
        return bool(self.detail & 1)

    @property
    def shopify_time(self) -> str:
        # "fresh": later than the last event; "stale": earlier than any; "missing": absent.
        return ("fresh", "stale", "missing")[(self.detail >> 1) % 3]

    def pick(self, options: list, shift: int):  # any of the options' types
        return options[(self.detail >> shift) % len(options)]


steps = st.builds(
    Step,
    new=states,
    source=st.sampled_from(list(Src)),
    gap=st.integers(1, 10**10).map(lambda us: timedelta(microseconds=us)),
    wording=wordings,
    detail=st.integers(0, 2**16 - 1),
)
# Attempts whose chain is never empty: the first move out of `unknown` to one of these
# always records, so tamper tests need not discard (and regenerate) empty chains.
recording_first = st.builds(
    Step,
    new=st.sampled_from([S.PENDING, S.SUBSCRIBED, S.UNSUBSCRIBED]),
    source=st.sampled_from([src for src in Src if src is not Src.DOUBLE_OPT_IN]),
    gap=st.just(timedelta(0)),
    wording=wordings,
    detail=st.integers(0, 2**16 - 1),
)
non_empty_chains = st.tuples(recording_first, st.lists(steps, min_size=2, max_size=9)).map(
    lambda parts: [parts[0], *parts[1]]
)


def expected_outcome(current: ConsentState, s: Step) -> str:
    """The specification, restated: what the ledger must do with this attempt."""
    if current is S.REDACTED:
        return "noop" if s.new is S.REDACTED else "refuse"
    if s.new is current:
        return "record" if s.new is S.PENDING and s.source in PENDING_RENEWAL else "noop"
    if s.new is S.UNKNOWN:
        return "refuse"
    if s.new is S.REDACTED:
        return "record"
    if s.source is Src.DOUBLE_OPT_IN and current is not S.PENDING:
        return "refuse"
    if current is S.SUBSCRIBED and s.new is S.PENDING:
        return "refuse"
    if current is S.UNSUBSCRIBED:
        allowed = (
            s.source in EXPLICIT
            or (s.source is Src.ADMIN and s.proof)
            or (s.source is Src.SHOPIFY and s.shopify_time == "fresh")
        )
        return "record" if allowed else "refuse"
    return "record"


def run(attempts: list[Step]) -> tuple[list[ConsentEvent], ConsentState]:
    """Apply attempts from `unknown`, skipping refusals, checking each against the spec."""
    events: list[ConsentEvent] = []
    state, at = S.UNKNOWN, T0
    for s in attempts:
        at += s.gap
        evidence = dict(s.pick(EXTRAS, 12))
        if s.proof:
            evidence.update(PROOF)
        if s.shopify_time == "fresh":
            evidence["consent_updated_at"] = at.isoformat()
        elif s.shopify_time == "stale":
            evidence["consent_updated_at"] = (T0 - timedelta(days=1)).isoformat()
        try:
            event = next_event(
                events[-1] if events else None,
                contact_id=CONTACT,
                current_state=state,
                new_state=s.new,
                source=s.source,
                actor=s.pick(ACTORS, 3),
                occurred_at=at,
                wording=s.wording,
                ip_hash=s.pick(IP_HASHES, 6),
                user_agent=s.pick(USER_AGENTS, 8),
                opt_in_level=s.pick(LEVELS, 10),
                evidence=evidence,
            )
        except InvalidConsentTransition:
            assert expected_outcome(state, s) == "refuse"
            continue
        assert expected_outcome(state, s) == ("noop" if event is None else "record")
        if event is not None:
            events.append(event)
            state = event.new_state
    return events, state


@PROPERTY
@given(st.lists(steps, max_size=20))
def test_any_sequence_of_attempts_leaves_a_valid_lawful_chain(attempts):
    events, final = run(attempts)

    result = verify_chain(events)
    assert result.valid, result.reason
    assert result.checked == len(events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert final == (events[-1].new_state if events else S.UNKNOWN)
    redacted_at = [i for i, e in enumerate(events) if e.new_state is S.REDACTED]
    if redacted_at:
        assert redacted_at == [len(events) - 1]  # the first redaction is the last event
    for e in events:
        if e.previous_state is S.UNSUBSCRIBED and e.new_state in (S.SUBSCRIBED, S.PENDING):
            assert (
                e.source in EXPLICIT
                or (e.source is Src.ADMIN and e.evidence.get("proof"))
                or (e.source is Src.SHOPIFY and "consent_updated_at" in e.evidence)
            )
            assert e.source not in (Src.IMPORT, Src.API)


def _other(values: list[object], current: object) -> st.SearchStrategy[object]:
    return st.sampled_from([v for v in values if v != current])


def _flip_hex(value: str) -> st.SearchStrategy[str]:
    def flip(i: int) -> str:
        return value[:i] + ("1" if value[i] == "0" else "0") + value[i + 1 :]

    return st.integers(0, len(value) - 1).map(flip)


def _longer(value: str | None) -> str:
    return "x" if value is None else value + "x"


# For every field of ConsentEvent, a strategy for a value that differs from the current one.
MUTATIONS: dict[str, Callable[[ConsentEvent], st.SearchStrategy[object]]] = {
    "contact_id": lambda e: st.just(uuid.UUID(int=e.contact_id.int ^ 1)),
    "sequence": lambda e: st.integers(-3, 3).filter(bool).map(lambda d: e.sequence + d),
    "previous_state": lambda e: _other(list(S), e.previous_state),
    "new_state": lambda e: _other(list(S), e.new_state),
    "source": lambda e: _other(list(Src), e.source),
    "actor": lambda e: st.just(_longer(e.actor)),
    "occurred_at": lambda e: st.just(e.occurred_at + timedelta(microseconds=1)),
    "wording": lambda e: st.just(_longer(e.wording)),
    "ip_hash": lambda e: st.just(_longer(e.ip_hash)),
    "user_agent": lambda e: st.just(_longer(e.user_agent)),
    "opt_in_level": lambda e: _other([None, *OptInLevel], e.opt_in_level),
    "evidence": lambda e: st.just({**e.evidence, "tampered": "1"}),
    "previous_hash": lambda e: _flip_hex(e.previous_hash),
    "hash": lambda e: _flip_hex(e.hash),
}


def test_every_field_has_a_mutation():
    assert set(MUTATIONS) == {f.name for f in fields(ConsentEvent)}


@PROPERTY
@given(non_empty_chains, st.data())
def test_altering_any_field_of_any_event_is_detected_at_that_event(attempts, data):
    """Exactly at that event, for every field, including `hash` and `previous_hash`.

    Event k is checked (sequence, previous_hash link, hash recomputation) before event k+1,
    and any change to k fails one of those checks at k itself: a changed `hash` no longer
    recomputes, a changed `previous_hash` no longer links to k-1 (or to genesis), any other
    change no longer matches the stored hash. So first_bad_sequence == k and checked == k-1.
    """
    events, _ = run(attempts)
    assert events
    index = data.draw(st.integers(0, len(events) - 1), label="event index")
    name = data.draw(st.sampled_from(sorted(MUTATIONS)), label="field")
    original = events[index]
    value = data.draw(MUTATIONS[name](original), label="new value")
    assert value != getattr(original, name)
    tampered = [*events[:index], replace(original, **{name: value}), *events[index + 1 :]]

    result = verify_chain(tampered)
    assert not result.valid
    assert result.first_bad_sequence == original.sequence
    assert result.checked == original.sequence - 1
    assert result.reason


@PROPERTY
@given(non_empty_chains, st.data())
def test_deleting_or_reordering_events_is_detected(attempts, data):
    """Both on the same chain (one generation for two checks keeps the suite fast)."""
    events, _ = run(attempts)
    assume(len(events) >= 2)

    # Deleting any event but the last (see the truncation test for the last): the sequence
    # check fails where the deleted one was.
    index = data.draw(st.integers(0, len(events) - 2), label="deleted index")
    result = verify_chain([*events[:index], *events[index + 1 :]])
    assert not result.valid
    assert result.first_bad_sequence == index + 1

    # Swapping any two: the earlier position now holds a later sequence number.
    i, j = sorted(data.draw(st.sets(st.integers(0, len(events) - 1), min_size=2, max_size=2)))
    swapped = list(events)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    result = verify_chain(swapped)
    assert not result.valid
    assert result.first_bad_sequence == i + 1
