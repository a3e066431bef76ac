"""ccxt's exceptions become the bot's taxonomy once, at the adapter, most specific first."""

from __future__ import annotations

import pytest
from ccxt.base import errors as ccxt_errors

from bot.config import AccountConfig
from bot.exchange.ccxt_gateway import _Secrets, translate
from bot.exchange.gateway import (
    DuplicateOrderError,
    FatalError,
    GatewayError,
    OrderRejectedError,
    RateLimitedError,
    RetryableError,
)


def noop(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("raised", "for_order", "expected"),
    [
        (ccxt_errors.AuthenticationError("bad key"), False, FatalError),
        (ccxt_errors.DuplicateOrderId("dup"), True, DuplicateOrderError),
        (
            ccxt_errors.InvalidOrder('{"code":-4116,"msg":"ClientOrderId is duplicated."}'),
            True,
            DuplicateOrderError,
        ),
        (ccxt_errors.InvalidOrder("ReduceOnly Order is rejected."), True, OrderRejectedError),
        (ccxt_errors.InsufficientFunds("Margin is insufficient."), True, OrderRejectedError),
        (ccxt_errors.DDoSProtection("429"), True, RateLimitedError),
        (ccxt_errors.RateLimitExceeded("-1003"), False, RateLimitedError),
        (ccxt_errors.RequestTimeout("timeout"), True, RetryableError),
        (ccxt_errors.ExchangeNotAvailable("503"), True, RetryableError),
        (ccxt_errors.OperationFailed("-1001 unknown execution status"), True, RetryableError),
        (ccxt_errors.BadSymbol("no market"), False, FatalError),
        (ccxt_errors.BadRequest("-1111 precision"), True, OrderRejectedError),
        (ccxt_errors.ExchangeError("something"), False, RetryableError),
        (ccxt_errors.ExchangeError("something"), True, OrderRejectedError),
    ],
)
def test_each_ccxt_error_maps_to_what_the_caller_does_next(
    raised: Exception, for_order: bool, expected: type[GatewayError]
) -> None:
    assert type(translate(raised, "call", for_order, noop)) is expected


def test_an_order_that_may_have_executed_is_never_called_rejected() -> None:
    for unknown in (ccxt_errors.RequestTimeout("t"), ccxt_errors.OperationFailed("-1001")):
        assert not isinstance(translate(unknown, "create_order", True, noop), OrderRejectedError)


def test_rate_limit_keeps_the_retry_after_hint() -> None:
    error = translate(ccxt_errors.DDoSProtection("429"), "call", False, noop, retry_after_s=3.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 3.0


def test_messages_lose_query_strings_and_secrets() -> None:
    account = AccountConfig(exchange="binance", api_key="KEY-123456", secret="SECRET-abcdef")
    scrub = _Secrets(account).scrub
    message = (
        "binance GET https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&signature=deadbeef "
        "400 KEY-123456 SECRET-abcdef"
    )
    error = translate(ccxt_errors.InvalidOrder(message), "fetch_order", False, scrub)
    text = str(error)
    assert "deadbeef" not in text
    assert "KEY-123456" not in text
    assert "SECRET-abcdef" not in text
