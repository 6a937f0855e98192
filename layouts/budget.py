"""Budget tier: "Will I overspend, and which packages drive it?" (DESIGN.md, Who uses it)."""

from layouts import Page, Section

PAGE = Page(
    id="budget",
    path="/budget",
    title="Budget",
    nav_label="Budget",
    question="Will I overspend, and which packages drive it?",
    tier="budget",
    sections=(
        Section(
            "This financial year",
            (
                "budget",
                "paid_to_date",
                "accrued_to_date",
                "committed",
                "awaiting_authorisation",
                "forecast_outturn",
                "variance",
            ),
        ),
        Section("Placements", ("active_placements", "high_cost_placements", "ending_soon")),
        # Money the forecast cannot place: the budget holder's own data quality.
        Section("Data quality", ("payments_without_element",)),
    ),
    charts=("spend_by_month", "placements_by_provider_type"),
    lists=("high_cost_placements", "ending_soon"),
    selector="cost_centres",
)
