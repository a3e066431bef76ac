"""The pure part of pair leasing: what a claim keeps, takes and gives back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.store.leases import Lease, LeaseState, fair_share, lease_problem, plan_claims

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ME = "me"


def row(pair: str, holder: str | None, token: int = 1, expires_in_s: float = 30) -> LeaseState:
    return LeaseState(pair, holder, token, NOW + timedelta(seconds=expires_in_s))


def test_free_pairs_are_taken_with_the_next_token() -> None:
    plan = plan_claims([row("A", None, token=4), row("B", None, token=0)], ME, NOW, share=5)
    assert [(t.pair, t.token, t.previous_holder) for t in plan.take] == [
        ("A", 5, None),
        ("B", 1, None),
    ]
    assert plan.keep == []
    assert plan.give_back == []


def test_a_pair_another_daemon_holds_is_never_taken_before_its_lease_ends() -> None:
    plan = plan_claims([row("A", "other", expires_in_s=0.001)], ME, NOW, share=5)
    assert plan.take == []


def test_an_expired_lease_is_taken_over_and_names_the_previous_holder() -> None:
    plan = plan_claims([row("A", "dead", token=7, expires_in_s=-1)], ME, NOW, share=5)
    assert [(t.pair, t.token, t.previous_holder) for t in plan.take] == [("A", 8, "dead")]


def test_own_leases_beyond_the_fair_share_are_given_back() -> None:
    rows = [row(p, ME) for p in "ABCDEF"]
    plan = plan_claims(rows, ME, NOW, share=fair_share(6, 3))
    assert plan.keep == ["A", "B"]
    assert plan.give_back == ["C", "D", "E", "F"]
    assert plan.take == []


def test_own_lapsed_lease_is_renewed_when_nobody_took_it() -> None:
    plan = plan_claims([row("A", ME, token=3, expires_in_s=-60)], ME, NOW, share=1)
    assert plan.keep == ["A"]
    assert plan.take == []


def test_fair_share_rounds_up_so_every_pair_has_room() -> None:
    assert [fair_share(6, n) for n in (0, 1, 2, 3, 4, 7)] == [6, 6, 3, 2, 2, 1]


holders = st.sampled_from([None, ME, "other", "third"])
states = st.lists(
    st.tuples(holders, st.integers(0, 50), st.floats(-100, 100)), min_size=0, max_size=12
)


@given(states, st.integers(1, 12))
def test_a_claim_never_takes_a_live_lease_and_never_holds_more_than_its_share(
    spec: list[tuple[str | None, int, float]], share: int
) -> None:
    rows = [row(f"P{i}", h, t, e) for i, (h, t, e) in enumerate(spec)]
    plan = plan_claims(rows, ME, NOW, share)
    by_pair = {r.pair: r for r in rows}
    for takeover in plan.take:
        before = by_pair[takeover.pair]
        assert before.holder != ME
        assert before.holder is None or before.expires_at <= NOW
        assert takeover.token == before.token + 1  # a new holder always has a new token
    assert len(plan.keep) + len(plan.take) <= share
    assert set(plan.keep) | set(plan.give_back) == {r.pair for r in rows if r.holder == ME}
    assert not set(plan.keep) & set(plan.give_back)


def test_sending_needs_the_same_holder_the_same_token_and_time_left() -> None:
    lease = Lease("A", ME, 3, NOW + timedelta(seconds=30))
    margin = timedelta(seconds=10)
    assert lease_problem(row("A", ME, 3, 30), lease, NOW, margin) is None
    assert "held by other" in (lease_problem(row("A", "other", 4), lease, NOW, margin) or "")
    # Taken over and back: same holder, new token — the old lease is still not good.
    assert "token 4" in (lease_problem(row("A", ME, 4), lease, NOW, margin) or "")
    assert "less than 10 s" in (lease_problem(row("A", ME, 3, 5), lease, NOW, margin) or "")
    assert "no lease row" in (lease_problem(None, lease, NOW, margin) or "")
