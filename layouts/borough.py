"""Borough tier: "Where is the service heading, and which team needs help?" (DESIGN.md)."""

from layouts import Page, Section

PAGE = Page(
    id="borough",
    path="/borough",
    title="Borough",
    nav_label="Borough",
    question="Where is the service heading, and which team needs help?",
    tier="borough",
    sections=(
        Section(
            "Demand (rates per 10,000 children, England beside them)",
            ("referrals_12m", "cin_rate", "cp_rate", "cla_rate"),
        ),
        Section("Timeliness", ("icpc_on_time", "assessments_on_time")),
        Section(
            "Stability",
            ("rereferral_rate", "cp_plans_2yrs", "second_cp_plans", "placement_moves"),
        ),
        Section("Forecast", ("budget", "forecast_outturn", "variance")),
    ),
    charts=(
        "trend_referrals",
        "trend_assessments",
        "trend_cp_starts",
        "trend_care_starts",
        "trend_spend",
    ),
    history=("overdue_steps", "unallocated_cases", "average_caseload"),
    team_matrix=True,
    default_scope="borough",
)
