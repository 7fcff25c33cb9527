"""The 11 HEx-PHI policy categories: file number, stable slug, display name.

The slugs are part of the file contracts (records, metrics, leaderboard columns), so they never change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    number: int
    slug: str
    title: str


CATEGORIES: tuple[Category, ...] = (
    Category(1, "illegal_activity", "Illegal Activity"),
    Category(2, "child_abuse", "Child Abuse Content"),
    Category(3, "hate_harass_violence", "Hate/Harass/Violence"),
    Category(4, "malware", "Malware"),
    Category(5, "physical_harm", "Physical Harm"),
    Category(6, "economic_harm", "Economic Harm"),
    Category(7, "fraud_deception", "Fraud/Deception"),
    Category(8, "adult_content", "Adult Content"),
    Category(9, "political_campaigning", "Political Campaigning"),
    Category(10, "privacy_violation", "Privacy Violation Activity"),
    Category(11, "tailored_financial_advice", "Tailored Financial Advice"),
)

SLUGS: tuple[str, ...] = tuple(c.slug for c in CATEGORIES)
BY_SLUG: dict[str, Category] = {c.slug: c for c in CATEGORIES}
BY_NUMBER: dict[int, Category] = {c.number: c for c in CATEGORIES}
BENIGN = "benign"

# HEx-PHI's public release withdrew category 2; the `safety_landscape_public` group leaves it out.
WITHDRAWN_FROM_PUBLIC_RELEASE: tuple[str, ...] = ("child_abuse",)


def category(slug: str) -> Category:
    """Look a category up by slug, with an error that lists the valid ones."""
    try:
        return BY_SLUG[slug]
    except KeyError:
        raise ValueError(f"unknown category {slug!r}; expected one of: {', '.join(SLUGS)}") from None
