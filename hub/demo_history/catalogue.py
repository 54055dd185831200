"""What the history is made of: categories, seasonality, names and keywords."""

from __future__ import annotations

import numpy as np

DAY = 86_400
HOUR = 3_600
YEAR = 365 * DAY

# A user row that can never sign in: not an Argon2 hash, so verification always fails.
UNUSABLE_PASSWORD = "!no-password: history customer"
EMAIL_DOMAIN = "history.evently.local"

CATEGORIES = ("concert", "theatre", "comedy", "sports", "classical", "family", "conference")
CATEGORY_SHARE = np.array([0.28, 0.16, 0.14, 0.14, 0.10, 0.10, 0.08])
# Start hours (UTC) each category's events choose from.
CATEGORY_HOURS = ((20, 21), (19, 20), (21, 22), (18, 19, 20), (19, 20), (11, 15), (9, 10))
CATEGORY_PRICE = np.array([1.2, 0.9, 0.7, 1.0, 1.0, 0.55, 2.2])
# Tickets per booking, 1..6, per category (families come in groups, conferences alone).
QUANTITY_P = np.array(
    [
        [0.22, 0.46, 0.09, 0.15, 0.04, 0.04],
        [0.20, 0.55, 0.08, 0.13, 0.02, 0.02],
        [0.18, 0.50, 0.12, 0.14, 0.03, 0.03],
        [0.25, 0.40, 0.12, 0.15, 0.04, 0.04],
        [0.30, 0.55, 0.06, 0.07, 0.01, 0.01],
        [0.05, 0.25, 0.20, 0.35, 0.10, 0.05],
        [0.70, 0.20, 0.05, 0.05, 0.00, 0.00],
    ]
)
QUANTITY_MEAN = QUANTITY_P @ np.arange(1, 7)

# Seasonality. Events are rarer in January and August and bookings fewer; December and
# early summer are high season. Weekends are busier, for shows and for buying tickets.
MONTH_FACTOR = np.array([0.70, 0.80, 0.95, 1.00, 1.05, 1.15, 1.20, 0.75, 1.00, 1.10, 1.15, 1.35])
EVENT_WEEKDAY = np.array([0.35, 0.50, 0.70, 0.90, 1.40, 1.60, 1.00])  # Monday first
WEEKDAY_BOOKINGS = np.array([0.80, 0.85, 0.90, 0.95, 1.15, 1.40, 1.25])
HOUR_BOOKINGS = np.array(
    [0.30, 0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.45, 0.70, 0.90, 1.00, 1.10,
     1.30, 1.30, 1.10, 1.00, 1.00, 1.10, 1.30, 1.60, 1.80, 1.70, 1.20, 0.70]
)  # fmt: skip
HOUR_BOOKINGS_P = HOUR_BOOKINGS / HOUR_BOOKINGS.sum()
AHEAD = 90 * DAY  # how far ahead events are on sale
GROWTH = 0.25  # more events and bookings each year, as a fraction of the first year's
ON_SALE_WEEKDAY, ON_SALE_HOUR = 4, 10  # sales open on Fridays at 10:00 UTC

MONDAY_DAY = 4  # 1970-01-05 was a Monday

FIRST_NAMES = (
    "Ana", "Beatriz", "Carla", "Diana", "Eva", "Filipa", "Gabriela", "Helena", "Ines", "Joana",
    "Leonor", "Maria", "Marta", "Rita", "Sofia", "Teresa", "Andre", "Bruno", "Carlos", "Diogo",
    "Eduardo", "Fernando", "Goncalo", "Hugo", "Joao", "Luis", "Miguel", "Nuno", "Pedro",
    "Rui", "Tiago", "Vasco", "Emma", "Liam", "Chloe", "Lucas", "Mia", "Noah", "Amelie", "Jonas",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
    "Jesus", "Sousa", "Fernandes", "Goncalves", "Gomes", "Lopes", "Marques", "Alves",
    "Almeida", "Ribeiro", "Pinto", "Carvalho", "Teixeira", "Moreira", "Correia", "Mendes",
    "Nunes", "Soares", "Vieira", "Monteiro", "Cardoso", "Rocha", "Muller", "Dubois", "Smith",
    "Rossi", "Garcia", "Novak",
)  # fmt: skip

# Per category: (name stems, stem keywords, shared keywords). An event's name comes from
# one stem; its keywords from that stem's own and two of the category's.
CATALOGUE: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "concert": (
        ("Nova Lisboa", "The Velvet Tides", "Coral Static", "Amber Route", "Paper Satellites",
         "Lumen Drive", "Saudade Sound System", "The Quiet Harbour", "Marta Reis Quartet",
         "Northern Bloom"),
        (("synthpop", "electronic"), ("indie", "rock"), ("electronic", "techno"), ("pop",),
         ("indie", "folk"), ("synthpop", "pop"), ("fado", "world music"), ("folk", "acoustic"),
         ("jazz", "quartet"), ("rock", "alternative")),
        ("live music", "tour", "band", "album launch"),
    ),
    "theatre": (
        ("Hamlet", "The Seagull", "A Doll's House", "Blood Wedding", "Waiting for Godot",
         "Twelfth Night", "The Cherry Orchard", "Medea", "Uncle Vanya", "The Tempest"),
        (("shakespeare", "tragedy"), ("chekhov",), ("ibsen",), ("lorca", "tragedy"),
         ("beckett", "absurd"), ("shakespeare", "comedy"), ("chekhov",), ("greek", "tragedy"),
         ("chekhov",), ("shakespeare",)),
        ("drama", "classic", "surtitles", "stage"),
    ),
    "comedy": (
        ("Open Mic Marathon", "Laugh Factory Tour", "Late Night Roast", "Improv Jam",
         "Sketch Club", "One Woman Riot"),
        (("stand-up", "open mic"), ("stand-up", "tour"), ("roast", "late show"),
         ("improv",), ("sketch",), ("stand-up", "solo show")),
        ("comedy", "late show", "16+"),
    ),
    "sports": (
        ("Lisbon Lions v Porto Dragons", "Braga Warriors v Lisbon Lions",
         "Futsal Cup Semi-final", "Volleyball League Night", "Coimbra Students v Faro Sharks",
         "Handball Derby"),
        (("basketball", "derby"), ("basketball",), ("futsal", "cup"), ("volleyball",),
         ("basketball",), ("handball", "derby")),
        ("league", "match", "final"),
    ),
    "classical": (
        ("Beethoven's Fifth", "Mozart Requiem", "Vivaldi: The Four Seasons",
         "Brahms and Schumann", "Chopin Recital", "Mahler's Resurrection", "Film Scores Gala"),
        (("beethoven", "symphony"), ("mozart", "choir"), ("vivaldi", "baroque"),
         ("brahms", "romantic"), ("chopin", "piano"), ("mahler", "symphony"),
         ("film music", "symphony")),
        ("orchestra", "classical", "concert hall"),
    ),
    "family": (
        ("Circus of Wonders", "Bubble Science Show", "Puppet Parade", "Magic for Minis",
         "Dinosaur Live"),
        (("circus", "acrobats"), ("science", "bubbles"), ("puppets",), ("magic",),
         ("dinosaurs", "animatronics")),
        ("kids", "matinee", "family"),
    ),
    "conference": (
        ("Cloud Native Summit", "Data Day", "Product Talks", "Design Systems Forum",
         "Security Night", "AI in Practice"),
        (("cloud", "devops"), ("data", "analytics"), ("product",), ("design", "frontend"),
         ("security",), ("machine learning", "ai")),
        ("technology", "software", "talks", "workshop"),
    ),
}  # fmt: skip
