"""Regenerate ``sales.csv``, the demo dataset that ``manage.py seed_demo`` uploads.

Deterministic (fixed seed), so the committed file and a regenerated one are identical:
    .venv/bin/python projects/sample_data/generate.py
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

ROWS = 500
SEED = 20240101
REGIONS = {"North": 1.15, "South": 0.9, "East": 1.05, "West": 0.95}
# product -> (list price, typical units per order)
PRODUCTS = {
    "Laptop": (1199.0, 3),
    "Monitor": (279.0, 6),
    "Keyboard": (49.0, 14),
    "Mouse": (25.0, 18),
    "Headset": (89.0, 9),
    "Docking station": (189.0, 4),
}


def sales_rows(*, rows: int = ROWS, seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start = date(2024, 1, 1)
    out: list[dict[str, object]] = []
    for _ in range(rows):
        day = start + timedelta(days=rng.randrange(366))
        region = rng.choice(list(REGIONS))
        product = rng.choice(list(PRODUCTS))
        list_price, typical_units = PRODUCTS[product]
        # Q4 sells more; regions differ in volume; prices carry small discounts.
        season = 1.3 if day.month >= 10 else 1.0
        units = max(1, round(rng.gauss(typical_units * REGIONS[region] * season, typical_units / 3)))
        price = round(list_price * rng.uniform(0.85, 1.0), 2)
        out.append(
            {
                "date": day.isoformat(),
                "region": region,
                "product": product,
                "units": units,
                "price": price,
                "revenue": round(units * price, 2),
            }
        )
    out.sort(key=lambda row: (row["date"], row["region"], row["product"]))
    return out


def main() -> None:
    path = Path(__file__).with_name("sales.csv")
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["date", "region", "product", "units", "price", "revenue"])
        writer.writeheader()
        writer.writerows(sales_rows())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
