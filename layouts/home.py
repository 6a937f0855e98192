"""The landing page: sends each user to their tier (one click), from where a tile opens its list."""

from layouts import Page

PAGE = Page(
    id="home",
    path="/",
    title="Children's services dashboard",
    nav_label="Home",
    question="Choose your view. Every tile opens the list of the children or packages it counts.",
    tier="home",
)
