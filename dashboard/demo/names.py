"""Name, ethnicity and postcode pools for synthetic people and workers (none is a real person)."""

from __future__ import annotations

import numpy as np

FIRST_NAMES_F = (
    "Amelia Olivia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Willow Freya Florence Emily "
    "Ella Poppy Evie Elsie Charlotte Evelyn Sienna Daisy Ruby Alice Harper Sofia Aisha Maryam "
    "Zara Hannah Fatima Amara Chloe Jessica Layla Nia Precious Kayla Leah Maya Priya Anaya "
    "Esme Phoebe Matilda Imogen Millie Zainab Ayesha Chantelle Shanice Ruth Joanne Sarah Claire "
    "Helen Rachel Karen Emma Laura Nicola Gemma Kirsty Louise Aaliyah Amira Hafsa Julia Natalia"
).split()
FIRST_NAMES_M = (
    "Oliver George Noah Arthur Muhammad Leo Oscar Harry Archie Jack Henry Charlie Freddie Theodore "
    "Thomas Jacob Alfie Finley Isaac Joshua James William Alexander Lucas Mason Ethan Daniel "
    "Adam Yusuf Ibrahim Kai Tyler Jayden Reuben Kofi Kwame Tobi Arjun Rohan Aarav Dylan Callum "
    "Connor Liam Ryan Jamie Lewis Nathan Kieran Aaron Marcus Jordan Shane Dean Gary Paul Mark "
    "David Andrew Simon Peter Stephen Omar Hassan Bilal Tomasz Jakub Mateusz Dawid Samuel Elijah"
).split()
SURNAMES = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen "
    "James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly Cook "
    "Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson "
    "Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Ali "
    "Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler Russell "
    "Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur "
    "Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks "
    "West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton Obi Okafor Mensah Asante "
    "Nowak Kowalski Wisniewski Rahman Chowdhury Uddin Islam Miah Sharma Gupta Mahmood Iqbal"
).split()

# CBDS ethnicity codes with shares loosely like an English urban borough's children.
ETHNICITY = {
    "WBRI": 0.48,
    "WIRI": 0.01,
    "WOTH": 0.07,
    "WROM": 0.01,
    "WIRT": 0.005,
    "MWBC": 0.04,
    "MWBA": 0.015,
    "MWAS": 0.02,
    "MOTH": 0.03,
    "AIND": 0.04,
    "APKN": 0.06,
    "ABAN": 0.04,
    "AOTH": 0.02,
    "CHNE": 0.01,
    "BCRB": 0.025,
    "BAFR": 0.06,
    "BOTH": 0.01,
    "OOTH": 0.02,
    "REFU": 0.005,
    "NOBT": 0.015,
}

# "DB" is not a UK postcode area, so no generated postcode can point at a real household.
POSTCODE_DISTRICTS = tuple(f"DB{n}" for n in range(1, 13))
_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


def pick(rng: np.random.Generator, pool: tuple[str, ...] | list[str], size: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), size)]


def ethnicities(rng: np.random.Generator, size: int) -> np.ndarray:
    codes = np.asarray(list(ETHNICITY), dtype=object)
    shares = np.asarray(list(ETHNICITY.values()))
    return codes[rng.choice(len(codes), size=size, p=shares / shares.sum())]


def postcodes(rng: np.random.Generator, size: int) -> np.ndarray:
    district = pick(rng, POSTCODE_DISTRICTS, size)
    sector = rng.integers(1, 10, size).astype(str)
    unit = _LETTERS[rng.integers(0, len(_LETTERS), size)].astype(object) + _LETTERS[
        rng.integers(0, len(_LETTERS), size)
    ].astype(object)
    return district + " " + sector.astype(object) + unit
