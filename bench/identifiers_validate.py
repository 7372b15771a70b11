"""How fast are the hot-path validators, measured against the physical floor?

Scanners call ``is_valid_iin`` on every 12-digit candidate they find, so its cost per call is
what a scan of a large table pays. The floor is the cheapest check anyone could do on the same
strings (``len(s) == 12 and s.isdigit()``, called the same way); the ratio says how much the
date, century and checksum rules cost on top of it. Both are timed in the same run, so the
ratio stays meaningful on a slow or busy machine where the absolute numbers do not.

Run: ``.venv/bin/python bench/identifiers_validate.py`` (10-20 s; ``--n`` to change the size).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from qorgau.identifiers import (
    bin_check_digit,
    iin_check_digit,
    is_valid_bin,
    is_valid_card,
    is_valid_iin,
    luhn_check_digit,
)

SEED = 20260118


def physical_floor(s: str) -> bool:
    """The least any 12-digit validator must do: a length and a digit check."""
    return len(s) == 12 and s.isdigit()


def card_floor(s: str) -> bool:
    n = len(s)
    return 13 <= n <= 19 and s.isdigit()


# Every birth date from 1900 to 2023 as (YYMMDD, century digit for a man), built once.
_BIRTH_DATES = [
    (f"{day:%y%m%d}", 3 if day.year < 2000 else 5)
    for day in (date(1900, 1, 1) + timedelta(days=k) for k in range((date(2024, 1, 1) - date(1900, 1, 1)).days))
]


def make_iin(rng: random.Random) -> str:
    while True:
        yymmdd, men = rng.choice(_BIRTH_DATES)
        first11 = f"{yymmdd}{men + rng.randrange(2)}{rng.randrange(10_000):04d}"
        check = iin_check_digit(first11)
        if check is not None:
            return f"{first11}{check}"


def make_bin(rng: random.Random) -> str:
    while True:
        yymm = f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}"
        first11 = f"{yymm}{rng.choice('456')}{rng.choice('0123')}{rng.randrange(100_000):05d}"
        check = bin_check_digit(first11)
        if check is not None:
            return f"{first11}{check}"


def make_card(rng: random.Random) -> str:
    payload = rng.choice(["4", "51", "2200", "2221", "62"])
    payload += "".join(rng.choices("0123456789", k=15 - len(payload)))
    return payload + str(luhn_check_digit(payload))


def mixed_twelve_digit_candidates(n: int, rng: random.Random) -> list[str]:
    """What a scanner hands the validator: mostly plausible 12-digit tokens, some noise.

    40 % valid IINs, 25 % random 12 digits, 15 % IINs with one digit changed, 10 % valid BINs,
    5 % digits of other lengths, 5 % words.
    """
    digits = "0123456789"
    words = ["договор", "invoice", "ИИН:", "2024-01-15", "+77012345678", "N12345678", "сумма", "KZT"]
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.40:
            out.append(make_iin(rng))
        elif roll < 0.65:
            out.append("".join(rng.choices(digits, k=12)))
        elif roll < 0.80:
            value = make_iin(rng)
            i = rng.randrange(12)
            out.append(value[:i] + rng.choice(digits.replace(value[i], "")) + value[i + 1 :])
        elif roll < 0.90:
            out.append(make_bin(rng))
        elif roll < 0.95:
            out.append("".join(rng.choices(digits, k=rng.choice([9, 10, 11, 13, 16]))))
        else:
            out.append(rng.choice(words))
    return out


def best_of(repeats: int, check: Callable[[str], bool], data: Sequence[str]) -> tuple[float, int]:
    """Best wall time of ``sum(map(check, data))`` over ``repeats`` runs, and how many passed."""
    best, passed = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        passed = sum(map(check, data))
        best = min(best, time.perf_counter() - start)
    return best, passed


def against_floor(
    repeats: int, floor: Callable[[str], bool], check: Callable[[str], bool], data: Sequence[str]
) -> tuple[float, float, int]:
    """Best times of the floor and of ``check``, measured alternately so that both see the same
    machine load; returns (floor seconds, check seconds, how many ``check`` passed)."""
    floor_best = check_best = float("inf")
    passed = 0
    for _ in range(repeats):
        floor_best = min(floor_best, best_of(1, floor, data)[0])
        seconds, passed = best_of(1, check, data)
        check_best = min(check_best, seconds)
    return floor_best, check_best, passed


def report(label: str, seconds: float, floor: float, n: int, passed: int) -> None:
    print(
        f"{label:<32} {n / seconds / 1e6:6.2f} M validations/s  "
        f"{seconds / n * 1e9:6.0f} ns/call  {seconds / floor:5.2f}x floor  ({passed:,} passed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="strings per data set (default 10^6)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(SEED)

    built = time.perf_counter()
    # A quarter of the strings are distinct, repeated four times: building 10^6
    # distinct ones would take longer than the measurement, and real columns repeat values too.
    mixed = mixed_twelve_digit_candidates(args.n // 4, rng) * 4
    # The secondary sets are smaller so that the whole run stays well under 30 s on a busy machine.
    valid = [make_iin(rng) for _ in range(args.n // 40)] * 20
    cards = [make_card(rng) for _ in range(args.n // 40)] * 10
    sizes = f"{len(mixed):,} mixed + {len(valid):,} valid IINs + {len(cards):,} cards"
    print(f"built {sizes} in {time.perf_counter() - built:.1f} s\n")

    floor, t, passed = against_floor(args.repeats, physical_floor, is_valid_iin, mixed)
    report("floor: len + isdigit (mixed)", floor, floor, len(mixed), sum(map(physical_floor, mixed)))
    report("is_valid_iin (mixed)", t, floor, len(mixed), passed)
    floor_bin, t_bin, passed = against_floor(args.repeats, physical_floor, is_valid_bin, mixed)
    report("is_valid_bin (mixed)", t_bin, floor_bin, len(mixed), passed)
    floor_valid, t_valid, passed = against_floor(args.repeats, physical_floor, is_valid_iin, valid)
    report("is_valid_iin (all valid)", t_valid, floor_valid, len(valid), passed)
    floor_cards, t_cards, passed = against_floor(args.repeats, card_floor, is_valid_card, cards)
    report("is_valid_card (16-digit, valid)", t_cards, floor_cards, len(cards), passed)

    print(f"\nis_valid_iin on mixed input: {len(mixed) / t:,.0f} validations/s, {t / floor:.2f}x the physical floor")


if __name__ == "__main__":
    main()
