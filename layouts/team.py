"""Team tier: "Who in my team is overloaded, and what is late today?" (DESIGN.md, Who uses it)."""

from layouts import Page, Section

PAGE = Page(
    id="team",
    path="/team",
    title="Team",
    nav_label="Team",
    question="Who in my team is overloaded, and what is late today?",
    tier="team",
    sections=(
        Section(
            "Caseloads and allocation",
            ("open_cases", "unallocated_cases", "average_caseload"),
        ),
        Section("Late and waiting work", ("overdue_steps", "awaiting_signoff")),
        Section(
            "Visits, reviews and assessments in timescale",
            (
                "assessments_on_time",
                "cp_visits_on_time",
                "cla_visits_on_time",
                "cla_reviews_on_time",
                "cp_visits_seen_alone",
            ),
        ),
        Section("Data quality", ("unfinished_steps", "unstarted_steps")),
    ),
    charts=("caseload_by_worker", "overdue_by_category"),
    lists=("awaiting_signoff",),
    selector="teams",
)
