"""Working days for statutory timescales: weekends and England's bank holidays don't count.
Known answers worked out by hand from the 2026 calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np

from dashboard.demo.calendar import WorkingCalendar, add_years, day_number, to_date


def test_working_days_skip_christmas_and_the_boxing_day_substitute():
    cal = WorkingCalendar(2026, 2027)
    friday = day_number(dt.date(2026, 12, 18))
    # Mon 21, Tue 22, Wed 23, Thu 24, (Fri 25 Christmas, Mon 28 Boxing Day moved), Tue 29.
    assert to_date(cal.add(np.array([friday]), 5)[0]) == dt.date(2026, 12, 29)
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April are holidays.
    thursday = day_number(dt.date(2026, 4, 2))
    assert to_date(cal.add(np.array([thursday]), 1)[0]) == dt.date(2026, 4, 7)
    # A Saturday start rolls forward to Monday first.
    saturday = day_number(dt.date(2026, 11, 21))
    assert to_date(cal.add(np.array([saturday]), 0)[0]) == dt.date(2026, 11, 23)


def test_count_of_working_days():
    cal = WorkingCalendar(2026, 2027)
    start = np.array([day_number(dt.date(2026, 12, 21))])
    end = np.array([day_number(dt.date(2027, 1, 4))])
    # 21-24 Dec (4), 29-31 Dec (3); 1 Jan is a holiday; 4 Jan is excluded (half-open).
    assert cal.count(start, end)[0] == 7


def test_add_years_keeps_the_day_and_clips_29_february():
    days = np.array([day_number(dt.date(2008, 2, 29)), day_number(dt.date(2010, 6, 15))])
    assert [to_date(d) for d in add_years(days, 18)] == [dt.date(2026, 2, 28), dt.date(2028, 6, 15)]
