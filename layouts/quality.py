"""Data quality: the work that makes numbers untrusted, for the user's own scope (DESIGN.md)."""

from layouts import Page, Section

PAGE = Page(
    id="quality",
    path="/quality",
    title="Data quality",
    nav_label="Data quality",
    question="Which records need finishing, starting or allocating before the numbers can be trusted?",
    tier="quality",
    sections=(
        Section(
            "Work and cases to put right",
            ("unfinished_steps", "unstarted_steps", "unallocated_cases"),
        ),
        Section(
            "Missing fields",
            (
                "children_missing_dob",
                "children_missing_ethnicity",
                "steps_without_due_date",
                "elements_without_cost_centre",
                "payments_without_element",
            ),
        ),
        Section(
            "Records that cannot be right",
            (
                "records_with_unknown_codes",
                "records_dated_in_the_future",
                "elements_with_negative_cost",
            ),
        ),
    ),
    lists=("unfinished_steps", "unstarted_steps", "unallocated_cases"),
    selector="teams_and_borough",
    default_scope="borough",
)
