"""Write a seeded, synthetic price path and funding series for backtests (not market data).

The price is a geometric Brownian motion whose drift and volatility switch between three
regimes (calm, rally, sell-off) with a Markov chain; the funding rate per 8-hour interval
mean-reverts to a level that follows the regime (higher in a rally, negative in a
sell-off). The same seed and options always write the same bytes.

    python scripts/make_sample_path.py                      # the committed sample
    python scripts/make_sample_path.py --bars 525600 --step-seconds 60 --out /tmp/year

writes ``<out>/prices.csv`` (timestamp,price) and ``<out>/funding.csv``
(timestamp,funding_rate: one row per funding time, every 8 hours).
"""

from __future__ import annotations

import argparse
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

# (name, annual drift, annual volatility, funding level per 8 h)
REGIMES = (
    ("calm", 0.0, 0.45, 0.0001),
    ("rally", 1.5, 0.70, 0.0004),
    ("sell-off", -2.0, 0.95, -0.0002),
)
# Chance per hour of leaving each regime (to one of the others, equally likely).
LEAVE_PER_HOUR = (0.01, 0.03, 0.04)
SECONDS_PER_YEAR = 365 * 86400
FUNDING_HOURS = 8


def generate(
    bars: int, step_seconds: int, seed: int, start: datetime, price: float
) -> tuple[list[tuple[datetime, float]], list[tuple[datetime, float]]]:
    """Prices at every bar and funding rates at every funding time inside the path."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not security
    dt = step_seconds / SECONDS_PER_YEAR
    regime = 0
    rate = REGIMES[0][3]
    prices: list[tuple[datetime, float]] = []
    funding: list[tuple[datetime, float]] = []
    leave_scale = step_seconds / 3600
    for index in range(bars):
        at = start + timedelta(seconds=index * step_seconds)
        if index:
            if rng.random() < LEAVE_PER_HOUR[regime] * leave_scale:
                regime = rng.choice([r for r in range(len(REGIMES)) if r != regime])
            _, mu, sigma, _ = REGIMES[regime]
            price *= math.exp((mu - sigma * sigma / 2) * dt + sigma * math.sqrt(dt) * rng.gauss())
        prices.append((at, price))
        if at.timestamp() % (FUNDING_HOURS * 3600) == 0:
            level = REGIMES[regime][3]
            rate += 0.3 * (level - rate) + 0.00005 * rng.gauss()
            funding.append((at, rate))
    return prices, funding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=24 * 28, help="rows (default: 4 weeks)")
    parser.add_argument("--step-seconds", type=int, default=3600, help="seconds between rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-01-05T00:00:00+00:00", help="first row (UTC)")
    parser.add_argument("--price", type=float, default=60000.0, help="first price")
    parser.add_argument("--out", type=Path, default=Path("examples/sample"))
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).astimezone(UTC)
    prices, funding = generate(args.bars, args.step_seconds, args.seed, start, args.price)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "prices.csv").open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("timestamp,price\n")
        for at, price in prices:
            handle.write(f"{int(at.timestamp())},{price:.2f}\n")
    with (args.out / "funding.csv").open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("timestamp,funding_rate\n")
        for at, rate in funding:
            handle.write(f"{int(at.timestamp())},{rate:.8f}\n")
    print(f"wrote {len(prices)} prices and {len(funding)} funding rates to {args.out}")


if __name__ == "__main__":
    main()
