"""The Atari games panbench scores: ROMs, object categories, colours and action texts, per game.

Each :class:`Game` says which ALE ROM it is, which OCAtari module reads its objects from RAM, the
rows of the screen where the game is played (the score and other HUD rows are left out), the
colours of the static background, and its object :class:`Category` entries: a name, the colours
OCAtari's colour tables give the category, the number of slots it has in an observation, the
OCAtari object classes that belong to it and the size range (native pixels) that tells it apart
from another category of the same colour. Coordinates and areas are in native screen pixels
(210 rows x 160 columns).
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]

#: native ALE screen size (rows, columns)
NATIVE_SHAPE = (210, 160)


@dataclass(frozen=True)
class Category:
    """An object category of a game.

    Attributes:
        name: the category's name in observations and texts ("player", "ball", ...).
        colours: the RGB colours its pixels have (from OCAtari's colour tables).
        count: observation slots for this category (the most objects tracked at once).
        ram: the OCAtari RAM object classes (``GameObject.category``) of this category.
        min_area: the smallest object, in native pixels (smaller blobs are noise).
        max_area: the largest object, in native pixels (larger blobs are another category).
        join: pixels of this category closer than ``2 * join + 1`` frame pixels belong to one
            object (sprites drawn as loose pixels, e.g. Seaquest's divers).
        by_colour: each colour of the category makes its own objects (Ms. Pac-Man's ghosts
            touch each other but differ in colour); otherwise its colours are one sprite's.
    """

    name: str
    colours: tuple[RGB, ...]
    count: int
    ram: tuple[str, ...]
    min_area: float = 2.0
    max_area: float = 2000.0
    join: int = 0
    by_colour: bool = False


@dataclass(frozen=True)
class Game:
    """One Atari game as panbench plays and perceives it.

    Attributes:
        name: the game's short name (the env is ``atari-<name>``).
        rom: the ALE ROM id (``ale_py.roms.get_rom_path``).
        title: the game's title, for texts.
        rows: (first, last + 1) native rows of the playfield scored by perception.
        background: colours that are never an object.
        categories: the object categories, slot order.
        player: the noun of the player object in action texts ("the paddle").
        moves: the ALE direction word (UP, DOWN, LEFT, RIGHT) -> the direction in texts.
        fire: the text of FIRE ("fire", "punch").
        cols: (first, last + 1) native columns of the playfield (ALE's left 8 columns are often
            a black blanking bar).
        flicker: emulator frames whose sprites make up one rendered frame (1: the last frame
            alone; Ms. Pac-Man draws one ghost per frame, so 4).
        intro: emulator frames of the game's opening during which the player cannot move
            (Ms. Pac-Man's tune); they are played (NOOP) before the start state every reset uses.
    """

    name: str
    rom: str
    title: str
    rows: tuple[int, int]
    background: tuple[RGB, ...]
    categories: tuple[Category, ...]
    player: str
    moves: dict[str, str]
    fire: str = "fire"
    cols: tuple[int, int] = (8, 160)
    flicker: int = 1
    intro: int = 0

    @property
    def num_slots(self) -> int:
        return sum(c.count for c in self.categories)

    def slot_categories(self) -> list[str]:
        """The category name of every observation slot, in order."""
        return [c.name for c in self.categories for _ in range(c.count)]


_LRUD = {"UP": "up", "DOWN": "down", "LEFT": "left", "RIGHT": "right"}

GAMES: dict[str, Game] = {
    g.name: g
    for g in (
        Game(
            name="pong",
            rom="pong",
            title="Pong",
            rows=(34, 194),
            background=((144, 72, 17),),
            categories=(
                Category("player", ((92, 186, 92),), 1, ("Player",), min_area=8, max_area=130),
                Category("enemy", ((213, 130, 74),), 1, ("Enemy",), min_area=8, max_area=130),
                Category("ball", ((236, 236, 236),), 1, ("Ball",), min_area=1, max_area=16),
            ),
            player="the green paddle",
            # Pong's ALE actions are named for the joystick: RIGHT moves the paddle up.
            moves={"RIGHT": "up", "LEFT": "down"},
            fire="serve",
        ),
        Game(
            name="breakout",
            rom="breakout",
            title="Breakout",
            rows=(93, 195),
            background=((0, 0, 0), (142, 142, 142)),
            categories=(
                Category("player", ((200, 72, 72),), 1, ("Player",), min_area=24, max_area=130),
                Category("ball", ((200, 72, 72),), 1, ("Ball",), min_area=1, max_area=12),
            ),
            player="the paddle",
            moves=_LRUD,
            fire="launch the ball",
        ),
        Game(
            name="boxing",
            rom="boxing",
            title="Boxing",
            rows=(36, 178),
            background=((110, 156, 66),),
            categories=(
                Category("player", ((214, 214, 214),), 1, ("Player",), min_area=40, max_area=900),
                Category("enemy", ((0, 0, 0),), 1, ("Enemy",), min_area=40, max_area=900),
            ),
            player="the white boxer",
            moves=_LRUD,
            fire="punch",
        ),
        Game(
            name="freeway",
            rom="freeway",
            title="Freeway",
            rows=(15, 196),
            background=((142, 142, 142), (170, 170, 170), (214, 214, 214), (0, 0, 0)),
            categories=(
                Category("chicken", ((252, 252, 84),), 2, ("Chicken",), min_area=12, max_area=100),
                Category(
                    "car",
                    (
                        (167, 26, 26),
                        (180, 231, 117),
                        (105, 105, 15),
                        (228, 111, 111),
                        (24, 26, 167),
                        (162, 98, 33),
                        (84, 92, 214),
                        (184, 50, 50),
                        (135, 183, 84),
                        (210, 210, 64),
                    ),
                    10,
                    ("Car",),
                    min_area=12,
                    max_area=160,
                    by_colour=True,
                ),
            ),
            player="the chicken",
            moves=_LRUD,
        ),
        Game(
            name="mspacman",
            rom="ms_pacman",
            title="Ms. Pac-Man",
            rows=(0, 172),
            background=((0, 28, 136), (228, 111, 111)),
            categories=(
                Category("player", ((210, 164, 74),), 1, ("Player",), min_area=10, max_area=180),
                Category(
                    "ghost",
                    ((180, 122, 48), (84, 184, 153), (198, 89, 179), (200, 72, 72), (66, 114, 194)),
                    4,
                    ("Ghost",),
                    min_area=10,
                    max_area=180,
                    by_colour=True,
                ),
            ),
            player="Ms. Pac-Man",
            moves=_LRUD,
            flicker=4,
            intro=264,
        ),
        Game(
            name="spaceinvaders",
            rom="space_invaders",
            title="Space Invaders",
            rows=(20, 196),
            background=((0, 0, 0), (80, 89, 22)),
            categories=(
                Category("player", ((50, 132, 50),), 1, ("Player",), min_area=20, max_area=140),
                Category("shield", ((181, 83, 40),), 3, ("Shield",), min_area=6, max_area=300),
                Category("alien", ((134, 134, 29),), 36, ("Alien",), min_area=10, max_area=120),
                Category("bullet", ((142, 142, 142),), 3, ("Bullet",), min_area=1, max_area=20),
            ),
            player="the laser cannon",
            moves=_LRUD,
            flicker=2,
            intro=148,
        ),
        Game(
            name="seaquest",
            rom="seaquest",
            title="Seaquest",
            rows=(46, 142),
            background=((0, 28, 136),),
            categories=(
                Category("player", ((187, 187, 53),), 1, ("Player",), min_area=20, max_area=350),
                Category(
                    "shark",
                    ((92, 186, 92), (198, 108, 58), (160, 171, 79), (72, 160, 72), (198, 89, 179)),
                    12,
                    ("Shark",),
                    min_area=10,
                    max_area=150,
                ),
                Category(
                    "submarine", ((170, 170, 170),), 12, ("Submarine",), min_area=10, max_area=200
                ),
                Category(
                    "diver", ((66, 72, 200),), 4, ("Diver",), min_area=4, max_area=200, join=1
                ),
            ),
            player="the submarine",
            moves=_LRUD,
            flicker=2,
            intro=124,
        ),
        Game(
            name="asterix",
            rom="asterix",
            title="Asterix",
            rows=(20, 160),
            background=(
                (0, 0, 0),
                (24, 26, 167),
                (45, 50, 184),
                (51, 26, 163),
                (66, 72, 200),
                (78, 50, 181),
                (84, 92, 214),
                (104, 72, 198),
                (127, 92, 213),
            ),
            categories=(
                Category("player", ((187, 187, 53),), 1, ("Player",), min_area=20, max_area=200),
                Category(
                    "enemy",
                    ((228, 111, 111), (184, 50, 50)),
                    8,
                    ("Enemy",),
                    min_area=10,
                    max_area=200,
                ),
            ),
            player="Asterix",
            moves=_LRUD,
        ),
    )
}


def action_text(game: Game, meaning: str) -> str:
    """The text of an ALE action meaning (``"UPFIRE"``) in ``game``: "move the paddle up and fire".

    ``NOOP`` is ``"wait"``; a direction the game does not name (e.g. UP in Pong) is read as the
    joystick direction, so every meaning has a distinct text.
    """
    if meaning == "NOOP":
        return "wait"
    fire = meaning.endswith("FIRE")
    stick = meaning[: -len("FIRE")] if fire else meaning
    words: list[str] = []
    rest = stick
    for key in ("UP", "DOWN", "LEFT", "RIGHT"):
        if key in rest:
            words.append(game.moves.get(key, key.lower()))
            rest = rest.replace(key, "", 1)
    move = f"move {game.player} {' and '.join(words)}" if words else ""
    if move and fire:
        return f"{move} and {game.fire}"
    return move or game.fire
