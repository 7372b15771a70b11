"""Regenerate the labelled evaluation corpus ``eval.jsonl`` from templates, deterministically.

    python -m qorgau.discovery.corpus.build            # rewrite eval.jsonl next to this file
    python -m qorgau.discovery.corpus.build --check    # exit 1 if the committed file differs

Every record is a template (written by hand in Kazakh, Russian, English or a mix) whose slots
``[[NAME]]`` are filled from a seeded random generator. A slot either produces a labelled entity
(its offsets are known because the generator put it there) or a hard negative (a value that looks
like personal data but is not: a 12-digit number with a bad checksum, a service number, a date
without birth context …). Labels therefore never depend on any scanner's output. Identifier values
are computed with :mod:`qorgau.identifiers`' check-digit helpers, so "valid" means valid.

All values are synthetic: names come from the small lists below, numbers from the generator.
The labelling rules are in ``README.md`` next to this file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from qorgau.identifiers import (
    is_valid_bin,
    is_valid_card,
    is_valid_iban,
    is_valid_iin,
    iin_check_digit,
    luhn_check_digit,
    parse_passport,
    parse_phone,
)
from qorgau.identifiers.checksums import iban_check_digits

SEED = 20260118  # the AI law's first day in force
OUT = Path(__file__).with_name("eval.jsonl")
SLOT = re.compile(r"\[\[([A-Z0-9_]+)\]\]")

# --- name lists (synthetic combinations of common names) ------------------------------------------

# Russian-language forms: (nominative, genitive, dative).
RU_MALE_FIRST = [("Сергей", "Сергея", "Сергею"), ("Алексей", "Алексея", "Алексею"), ("Дмитрий", "Дмитрия", "Дмитрию"),
                 ("Иван", "Ивана", "Ивану"), ("Михаил", "Михаила", "Михаилу"), ("Павел", "Павла", "Павлу"),
                 ("Ерлан", "Ерлана", "Ерлану"), ("Марат", "Марата", "Марату"), ("Асхат", "Асхата", "Асхату"),
                 ("Нурлан", "Нурлана", "Нурлану"), ("Бауыржан", "Бауыржана", "Бауыржану"),
                 ("Даурен", "Даурена", "Даурену"), ("Арман", "Армана", "Арману"), ("Олег", "Олега", "Олегу")]
RU_FEMALE_FIRST = [("Анна", "Анны", "Анне"), ("Мария", "Марии", "Марии"), ("Елена", "Елены", "Елене"),
                   ("Ольга", "Ольги", "Ольге"), ("Наталья", "Натальи", "Наталье"), ("Айгерим", "Айгерим", "Айгерим"),
                   ("Динара", "Динары", "Динаре"), ("Асель", "Асель", "Асель"), ("Гульнара", "Гульнары", "Гульнаре"),
                   ("Жанар", "Жанар", "Жанар"), ("Светлана", "Светланы", "Светлане"), ("Мадина", "Мадины", "Мадине")]
# Masculine surname stems in -ов/-ев/-ин; the feminine adds -а.
RU_SURNAMES = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Ахметов", "Сейтов", "Жаксылыков", "Серикбаев",
               "Касымов", "Бекенов", "Омаров", "Тулегенов", "Абенов", "Исаев", "Муканов", "Калиев", "Ибраев",
               "Сапарбаев", "Ильин", "Нуржанов", "Байжанов", "Есенов", "Шарипов", "Мусин"]
RU_PATRONYMIC_STEMS = ["Сергеев", "Петров", "Иванов", "Маратов", "Ерланов", "Нурланов", "Сериков",
                       "Болатов", "Александров", "Канатов", "Амангельдиев", "Викторов"]

KK_MALE_FIRST = ["Ерлан", "Нұрлан", "Асқар", "Бауыржан", "Дәурен", "Серік", "Айбек", "Ержан", "Қайрат", "Мұрат",
                 "Талғат", "Ғалым"]
KK_FEMALE_FIRST = ["Айгерім", "Гүлнар", "Әсел", "Динара", "Жанар", "Ақмарал", "Мадина", "Салтанат", "Перизат",
                   "Аружан", "Ботагөз", "Назерке"]
KK_FATHERS = ["Серік", "Нұрлан", "Болат", "Қанат", "Ермек", "Асан", "Марат", "Жомарт", "Талғат", "Бақыт"]
KK_SURNAMES = ["Жақсылықов", "Сейітов", "Омаров", "Тұрсынов", "Нұрланов", "Бекболатов", "Қасымов", "Оспанов",
               "Ахметов", "Сәрсенов", "Байжанов", "Құдайбергенов", "Тоқтаров", "Әбдіров"]

KK_LAT_MALE_FIRST = ["Yerlan", "Nurlan", "Askar", "Bauyrzhan", "Dauren", "Serik", "Aibek", "Yerzhan", "Kairat",
                     "Murat", "Talgat", "Galym"]
KK_LAT_FEMALE_FIRST = ["Aigerim", "Gulnar", "Assel", "Dinara", "Zhanar", "Akmaral", "Madina", "Saltanat",
                       "Perizat", "Aruzhan", "Botagoz", "Nazerke"]
KK_LAT_FATHERS = ["Serik", "Nurlan", "Bolat", "Kanat", "Yermek", "Asan", "Marat", "Zhomart", "Talgat", "Bakyt"]
KK_LAT_SURNAMES = ["Zhaksylykov", "Seitov", "Omarov", "Tursynov", "Nurlanov", "Bekbolatov", "Kassymov", "Ospanov",
                   "Akhmetov", "Sarsenov", "Baizhanov", "Kudaibergenov", "Toktarov", "Abdirov"]

EN_MALE_FIRST = ["John", "Michael", "David", "James", "Robert", "Daniel", "Thomas", "Peter", "Mark", "Andrew"]
EN_FEMALE_FIRST = ["Emily", "Sarah", "Laura", "Anna", "Jessica", "Emma", "Olivia", "Rachel", "Helen", "Kate"]
EN_SURNAMES = ["Smith", "Johnson", "Brown", "Miller", "Wilson", "Taylor", "Clarke", "Walker", "Harris", "Morgan",
               "O'Connor", "Fischer", "Novak", "Bennett"]

TRANSLIT = str.maketrans({
    "а": "a", "ә": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "қ": "k", "л": "l", "м": "m", "н": "n", "ң": "n", "о": "o",
    "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ұ": "u", "ү": "u", "ф": "f", "х": "kh",
    "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "і": "i", "ь": "", "э": "e",
    "ю": "yu", "я": "ya", "'": "",
})

RU_MONTHS_GEN = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
                 "ноября", "декабря"]
KK_MONTHS = ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан",
             "қараша", "желтоқсан"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]

MOBILE_PREFIXES = ["700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"]
LANDLINE_AREAS = [("727", 7), ("7172", 6), ("7212", 6), ("7252", 6), ("7292", 6), ("7122", 6)]
EMAIL_DOMAINS = ["gmail.com", "mail.ru", "yandex.kz", "inbox.ru", "outlook.com", "bk.ru", "list.ru"]
GOV_DOMAINS = ["gov.kz", "minfin.gov.kz", "enbek.gov.kz", "astana.gov.kz", "almaty.gov.kz", "edu.gov.kz",
               "kgd.gov.kz", "mz.gov.kz"]
CORP_DOMAINS = ["kaspi.kz", "halykbank.kz", "kazatomprom.kz", "beeline.kz", "kcell.kz", "freedom.kz"]
KZ_BANK_CODES = ["125", "722", "914", "998", "551", "826", "856", "601", "070"]


@dataclass
class Person:
    sex: str  # "m" | "f"
    birth: date
    ru_forms: dict[str, tuple[str, str, str]]  # first, surname, patronymic: (nom, gen, dat)
    kk: dict[str, str]
    kk_lat: dict[str, str]
    en: dict[str, str]


@dataclass
class Ctx:
    rng: random.Random
    lang: str
    people: list[Person] = field(default_factory=list)

    def person(self, n: int = 0) -> Person:
        while len(self.people) <= n:
            self.people.append(make_person(self.rng))
        return self.people[n]


Piece = tuple[str, list[tuple[int, int, str]], list[str]]  # text, labels (relative), negative tags


# --- people ---------------------------------------------------------------------------------------

def make_person(rng: random.Random) -> Person:
    sex = rng.choice("mf")
    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 56))
    if sex == "m":
        first = rng.choice(RU_MALE_FIRST)
        sur = rng.choice(RU_SURNAMES)
        surname = (sur, sur + "а", sur + "у")
        stem = rng.choice(RU_PATRONYMIC_STEMS)
        patr = (stem + "ич", stem + "ича", stem + "ичу")
    else:
        first = rng.choice(RU_FEMALE_FIRST)
        sur = rng.choice(RU_SURNAMES) + "а"
        surname = (sur, sur[:-1] + "ой", sur[:-1] + "ой")
        stem = rng.choice(RU_PATRONYMIC_STEMS)
        patr = (stem + "на", stem + "ны", stem + "не")
    ru_forms = {"first": first, "surname": surname, "patr": patr}
    father = rng.randrange(len(KK_FATHERS))
    kk_first = rng.choice(KK_MALE_FIRST if sex == "m" else KK_FEMALE_FIRST)
    kk_sur = rng.choice(KK_SURNAMES) + ("" if sex == "m" else "а")
    kk_patr = KK_FATHERS[father] + ("ұлы" if sex == "m" else "қызы")
    lat_i = rng.randrange(len(KK_LAT_MALE_FIRST))
    lat_first = (KK_LAT_MALE_FIRST if sex == "m" else KK_LAT_FEMALE_FIRST)[lat_i]
    lat_sur = rng.choice(KK_LAT_SURNAMES) + ("" if sex == "m" else "a")
    lat_patr = KK_LAT_FATHERS[father] + ("uly" if sex == "m" else "kyzy")
    en_first = rng.choice(EN_MALE_FIRST if sex == "m" else EN_FEMALE_FIRST)
    return Person(
        sex=sex, birth=birth, ru_forms=ru_forms,
        kk={"first": kk_first, "surname": kk_sur, "patr": kk_patr},
        kk_lat={"first": lat_first, "surname": lat_sur, "patr": lat_patr},
        en={"first": en_first, "surname": rng.choice(EN_SURNAMES)},
    )


def _initial(name: str) -> str:
    return name[0] + "."


def person_ru(ctx: Ctx, n: int = 0, case: int = 0) -> str:
    """A Russian-text full name in one of the ways forms and notes write it (case 0/1/2 = nom/gen/dat)."""
    p = ctx.person(n).ru_forms
    first, sur, patr = p["first"][case], p["surname"][case], p["patr"][case]
    style = ctx.rng.randrange(6)
    if style == 0:
        return f"{sur} {first} {patr}"
    if style == 1:
        return f"{first} {patr} {sur}"
    if style == 2:
        return f"{first} {sur}"
    if style == 3:
        return f"{sur} {_initial(p['first'][0])}{_initial(p['patr'][0])}"
    if style == 4:
        return f"{_initial(p['first'][0])} {_initial(p['patr'][0])} {sur}"
    return f"{sur} {first}"


def person_ru_initials(ctx: Ctx, n: int = 0) -> str:
    p = ctx.person(n).ru_forms
    sur, f, pa = p["surname"][0], _initial(p["first"][0]), _initial(p["patr"][0])
    return ctx.rng.choice([f"{sur} {f}{pa}", f"{sur} {f} {pa}", f"{f}{pa} {sur}", f"{f} {pa} {sur}"])


KK_GEN = {"ов": "тың", "ев": "тің", "ин": "нің", "ұлы": "ның", "қызы": "ның", "а": "ның"}
KK_DAT = {"ов": "қа", "ев": "ке", "ин": "ге", "ұлы": "на", "қызы": "на", "а": "ға"}


def _kk_case(word: str, table: dict[str, str]) -> str:
    for ending in sorted(table, key=len, reverse=True):
        if word.endswith(ending):
            return word + table[ending]
    return word


def person_kk(ctx: Ctx, n: int = 0, case: str = "") -> str:
    """A Kazakh full name, Cyrillic; ``case`` "gen"/"dat" puts the ending on the last word."""
    p = ctx.person(n).kk
    style = ctx.rng.randrange(5)
    if style == 0:
        words = [p["surname"], p["first"], p["patr"]]
    elif style == 1:
        words = [p["first"], p["patr"]]
    elif style == 2:
        words = [p["first"], p["surname"]]
    elif style == 3:
        words = [p["surname"], p["first"]]
    else:
        words = [p["first"], p["patr"], p["surname"]]
    if case:
        words[-1] = _kk_case(words[-1], KK_GEN if case == "gen" else KK_DAT)
    return " ".join(words)


def person_kk_initials(ctx: Ctx, n: int = 0) -> str:
    p = ctx.person(n).kk
    return ctx.rng.choice([f"{p['surname']} {_initial(p['first'])}{_initial(p['patr'])}",
                           f"{_initial(p['first'])} {p['surname']}"])


def person_kk_lat(ctx: Ctx, n: int = 0) -> str:
    p = ctx.person(n).kk_lat
    style = ctx.rng.randrange(4)
    if style == 0:
        return f"{p['first']} {p['patr']}"
    if style == 1:
        return f"{p['surname']} {p['first']}"
    if style == 2:
        return f"{p['first']} {p['surname']}"
    return f"{p['surname']} {p['first']} {p['patr']}"


def person_en(ctx: Ctx, n: int = 0) -> str:
    p = ctx.person(n).en
    style = ctx.rng.randrange(4)
    if style == 3:
        return f"{p['first'][0]}. {p['surname']}"
    return f"{p['first']} {p['surname']}"


# --- identifiers -----------------------------------------------------------------------------------

def make_iin(rng: random.Random, birth: date, sex: str) -> str:
    century = {1800: 1, 1900: 3, 2000: 5}[birth.year // 100 * 100] + (0 if sex == "m" else 1)
    while True:
        body = f"{birth:%y%m%d}{century}{rng.randrange(10000):04d}"
        check = iin_check_digit(body)
        if check is not None:
            value = body + str(check)
            assert is_valid_iin(value)
            return value


def make_bin(rng: random.Random) -> str:
    while True:
        body = f"{rng.randrange(0, 25):02d}{rng.randrange(1, 13):02d}{rng.choice('4456')}{rng.choice('0001')}" \
               f"{rng.randrange(100000):05d}"
        check = iin_check_digit(body)
        if check is not None:
            value = body + str(check)
            assert is_valid_bin(value)
            return value


def bad_twelve(rng: random.Random) -> str:
    """12 digits shaped like an IIN (real date, century digit) whose check digit is wrong."""
    while True:
        iin = make_iin(rng, date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 56)), rng.choice("mf"))
        value = iin[:11] + str((int(iin[11]) + rng.randrange(1, 10)) % 10)
        if not is_valid_iin(value) and not is_valid_bin(value):
            return value


def impossible_date_twelve(rng: random.Random) -> str:
    """12 digits with a checksum that works out but a birth date that does not exist (31 Feb, month 13)."""
    while True:
        yy = rng.randrange(50, 100)
        mmdd = rng.choice(["0231", "0230", "1301", "0432", "1131", "0000"])
        body = f"{yy:02d}{mmdd}{rng.choice('34')}{rng.randrange(10000):04d}"
        check = iin_check_digit(body)
        if check is not None:
            value = body + str(check)
            if not is_valid_iin(value) and not is_valid_bin(value):
                return value


def order_number(rng: random.Random) -> str:
    while True:
        value = f"{rng.choice(['2023', '2024', '2025'])}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}" \
                f"{rng.randrange(10000):04d}"
        if not is_valid_iin(value) and not is_valid_bin(value):
            return value


def mobile_digits(rng: random.Random) -> str:
    while True:
        nsn = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(2000000, 9999999):07d}"
        if parse_phone("+7" + nsn).country == "KZ":
            return nsn


def write_mobile(rng: random.Random, nsn: str) -> str:
    a, b, c, d = nsn[:3], nsn[3:6], nsn[6:8], nsn[8:]
    return rng.choice([
        f"+7 {a} {b} {c} {d}", f"8 ({a}) {b}-{c}-{d}", f"8{nsn}", f"+7{nsn}", f"+7 ({a}) {b}-{c}-{d}",
        f"8-{a}-{b}-{c}-{d}", f"8 {a} {b} {c}{d}", f"+7-{a}-{b}-{c}{d}", f"8({a}){b}{c}{d}", f"+7 {a} {b}{c}{d}",
    ])


def landline(rng: random.Random) -> str:
    while True:
        area, width = rng.choice(LANDLINE_AREAS)
        sub = f"{rng.randrange(2 * 10 ** (width - 1), 10 ** width):0{width}d}"
        try:
            phone = parse_phone("+7" + area + sub)
        except ValueError:
            continue
        if phone.country != "KZ" or phone.kind not in ("landline", "landline_or_mobile"):
            continue
        if width == 7:
            s1, s2, s3 = sub[:3], sub[3:5], sub[5:]
        else:
            s1, s2, s3 = sub[:2], sub[2:4], sub[4:]
        return rng.choice([f"+7 {area} {s1} {s2} {s3}", f"8 ({area}) {s1}-{s2}-{s3}", f"+7 ({area}) {s1}-{s2}-{s3}",
                           f"8 {area} {s1}{s2}{s3}"])


def make_iban(rng: random.Random, valid: bool = True) -> str:
    alphabet = "0123456789" * 3 + "KZT"
    while True:
        bban = rng.choice(KZ_BANK_CODES) + "".join(rng.choice(alphabet) for _ in range(13))
        check = iban_check_digits("KZ", bban)
        if not valid:
            check = f"{(int(check) + rng.randrange(1, 90)) % 97 + 2:02d}"
        value = "KZ" + check + bban
        if is_valid_iban(value) is valid:
            break
    if rng.random() < 0.4:
        return " ".join(value[i:i + 4] for i in range(0, 20, 4))
    return value


CARD_PREFIXES = {"visa": ["4400", "4405", "4149", "4263"], "mastercard": ["5169", "5355", "5486", "5522"],
                 "mastercard2": ["2221", "2300", "2518", "2720"], "mir": ["2200", "2201", "2202", "2203", "2204"]}


def make_card(rng: random.Random, brand: str | None = None, valid: bool = True) -> str:
    brand = brand or rng.choice(["visa", "visa", "mastercard", "mastercard2", "mir"])
    payload = rng.choice(CARD_PREFIXES[brand]) + "".join(str(rng.randrange(10)) for _ in range(11))
    check = luhn_check_digit(payload)
    if not valid:
        check = (check + rng.randrange(1, 10)) % 10
    digits = payload + str(check)
    assert is_valid_card(digits) is valid
    style = rng.randrange(4)
    if style == 0:
        return digits
    sep = "-" if style == 3 else " "
    return sep.join(digits[i:i + 4] for i in range(0, 16, 4))


def make_passport(rng: random.Random) -> str:
    letter = "Н" if rng.random() < 0.15 else "N"  # Cyrillic EN, as typed on a Russian layout
    value = f"{letter}{rng.randrange(10 ** 7, 10 ** 8):08d}"
    parse_passport(value)
    return value


def make_ip(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return f"2a02:{rng.randrange(0x1000, 0xffff):x}:{rng.randrange(0x100, 0xfff):x}:{rng.randrange(0x10, 0xff):x}::" \
               f"{rng.randrange(1, 0xff):x}"
    first = rng.choice([2, 5, 37, 46, 78, 82, 85, 89, 92, 95, 176, 178, 185, 192, 195, 212])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def make_plate(rng: random.Random) -> str:
    letters = "ABCDEHKMOPTXYZ"
    digits = f"{rng.randrange(1, 1000):03d}"
    series = "".join(rng.choice(letters) for _ in range(rng.choice([2, 3, 3])))
    region = f"{rng.randrange(1, 20):02d}"
    return f"{digits} {series} {region}" if rng.random() < 0.3 else f"{digits}{series}{region}"


# --- addresses and dates ----------------------------------------------------------------------------

RU_CITIES = [("Алматы", "050"), ("Астана", "010"), ("Шымкент", "160"), ("Караганда", "100"), ("Актобе", "030"),
             ("Павлодар", "140"), ("Усть-Каменогорск", "070"), ("Атырау", "060")]
RU_STREETS = ["ул. Абая", "пр. Достык", "ул. Толе би", "пр. Аль-Фараби", "ул. Жандосова", "ул. Сатпаева",
              "пр. Кабанбай батыра", "ул. Гоголя", "пр. Республики", "ул. Пушкина", "ул. Кенесары",
              "пр. Абылай хана", "ул. Жибек жолы", "ул. Розыбакиева"]
RU_MICRO = ["мкр. Самал-2", "мкр. Орбита-3", "мкр. Аксай-4", "мкр. Жетысу-1", "мкр. Нурсат", "мкр. Юго-Восток"]
KK_CITIES = [("Алматы", "050"), ("Астана", "010"), ("Шымкент", "160"), ("Қарағанды", "100"), ("Ақтөбе", "030"),
             ("Түркістан", "161"), ("Атырау", "060"), ("Орал", "090")]
KK_STREETS = ["Абай даңғылы", "Достық даңғылы", "Төле би көшесі", "Сәтбаев көшесі", "Қабанбай батыр даңғылы",
              "Бейбітшілік көшесі", "Жібек жолы көшесі", "Кенесары көшесі", "Әл-Фараби даңғылы", "Мәңгілік Ел даңғылы"]
KK_VILLAGES = [("Алматы облысы", "Қарасай ауданы", "Қаскелең"), ("Түркістан облысы", "Сайрам ауданы", "Ақсу"),
               ("Ақмола облысы", "Целиноград ауданы", "Қосшы"), ("Жамбыл облысы", "Байзақ ауданы", "Сарыкемер")]
EN_CITIES = [("Almaty", "050"), ("Astana", "010"), ("Shymkent", "160"), ("Karaganda", "100"), ("Aktobe", "030")]
EN_STREETS = ["Abay Ave", "Dostyk Ave", "Tole Bi St", "Satpayev St", "Kabanbay Batyr Ave", "Al-Farabi Ave",
              "Zhibek Zholy St", "Mangilik El Ave", "Kunayev St", "Turan Ave"]


def address_ru(rng: random.Random) -> str:
    city, post = rng.choice(RU_CITIES)
    postal = f"{post}{rng.randrange(0, 100):03d}"
    street = rng.choice(RU_MICRO if rng.random() < 0.25 else RU_STREETS)
    house, flat = rng.randrange(1, 220), rng.randrange(1, 300)
    style = rng.randrange(6)
    if style == 0:
        return f"{postal}, г. {city}, {street}, д. {house}, кв. {flat}"
    if style == 1:
        return f"г. {city}, {street}, д. {house}, кв. {flat}"
    if style == 2:
        return f"г. {city}, {street}, {house}-{flat}"
    if style == 3:
        return f"{city}, {street}, д. {house}"
    if style == 4:
        return f"{street}, д. {house}, кв. {flat}, г. {city}"
    return f"Алматинская обл., Карасайский р-н, с. Каскелен, ул. Абылай хана, д. {house}"


def address_kk(rng: random.Random) -> str:
    city, post = rng.choice(KK_CITIES)
    postal = f"{post}{rng.randrange(0, 100):03d}"
    street = rng.choice(KK_STREETS)
    house, flat = rng.randrange(1, 220), rng.randrange(1, 300)
    style = rng.randrange(5)
    if style == 0:
        return f"{city} қаласы, {street}, {house}-үй, {flat}-пәтер"
    if style == 1:
        return f"{postal}, {city} қ., {street}, {house} үй, {flat} пәтер"
    if style == 2:
        region, district, village = rng.choice(KK_VILLAGES)
        return f"{region}, {district}, {village} ауылы, {street}, {house}"
    if style == 3:
        return f"{city} қ., {street} {house}, {flat} пәтер"
    return f"{street}, {house}-үй, {city} қаласы"


def address_en(rng: random.Random) -> str:
    city, post = rng.choice(EN_CITIES)
    postal = f"{post}{rng.randrange(0, 100):03d}"
    street = rng.choice(EN_STREETS)
    house, flat = rng.randrange(1, 220), rng.randrange(1, 300)
    style = rng.randrange(5)
    if style == 0:
        return f"{house} {street}, apt. {flat}, {city} {postal}"
    if style == 1:
        return f"{street} {house}, apt {flat}, {city}, Kazakhstan"
    if style == 2:
        return f"{city}, {street} {house}, flat {flat}"
    if style == 3:
        return f"mkr. Samal-{rng.randrange(1, 4)}, bldg {house}, apt {flat}, {city} {postal}"
    return f"{postal}, {city}, {street}, {house}"


def dob_piece(ctx: Ctx, n: int = 0) -> Piece:
    """The person's birth date written the way the record's language does; the label is the date only."""
    d = ctx.person(n).birth
    rng = ctx.rng
    if ctx.lang == "ru":
        text = rng.choice([f"{d:%d.%m.%Y}", f"{d.day} {RU_MONTHS_GEN[d.month - 1]} {d.year}", f"{d:%Y-%m-%d}",
                           f"{d:%d/%m/%Y}"])
    elif ctx.lang == "kk":
        text = rng.choice([f"{d:%d.%m.%Y}", f"{d.year} жылғы {d.day} {KK_MONTHS[d.month - 1]}", f"{d:%Y-%m-%d}"])
    else:
        text = rng.choice([f"{d.day} {EN_MONTHS[d.month - 1]} {d.year}", f"{EN_MONTHS[d.month - 1]} {d.day}, {d.year}",
                           f"{d:%Y-%m-%d}", f"{d:%d.%m.%Y}"])
    return text, [(0, len(text), "DATE_OF_BIRTH")], []


def other_date(ctx: Ctx) -> str:
    d = date(2019, 1, 1) + timedelta(days=ctx.rng.randrange(365 * 6))
    if ctx.lang == "kk":
        return ctx.rng.choice([f"{d:%d.%m.%Y}", f"{d.year} жылғы {d.day} {KK_MONTHS[d.month - 1]}"])
    if ctx.lang == "en":
        return ctx.rng.choice([f"{d.day} {EN_MONTHS[d.month - 1]} {d.year}", f"{d:%Y-%m-%d}"])
    return ctx.rng.choice([f"{d:%d.%m.%Y}", f"{d.day} {RU_MONTHS_GEN[d.month - 1]} {d.year}"])


# --- slots ----------------------------------------------------------------------------------------

def _ent(kind: str, text: str) -> Piece:
    return text, [(0, len(text), kind)], []


def _neg(tag: str, text: str) -> Piece:
    return text, [], [tag]


def _email(ctx: Ctx, domains: list[str], n: int = 0) -> Piece:
    p = ctx.person(n)
    if ctx.lang == "en":
        first, sur = p.en["first"].lower(), p.en["surname"].lower().replace("'", "")
    else:
        first = p.kk_lat["first"].lower()
        sur = p.kk_lat["surname"].lower() if ctx.rng.random() < 0.7 else p.ru_forms["surname"][0].lower().translate(TRANSLIT)
    local = ctx.rng.choice([f"{first}.{sur}", f"{first[0]}.{sur}", f"{sur}{p.birth:%y}", f"{first}_{sur}",
                            f"{first}{ctx.rng.randrange(1, 99)}"])
    return _ent("EMAIL_ADDRESS", f"{local}@{ctx.rng.choice(domains)}")


def _person(ctx: Ctx, n: int, case: int | str = 0) -> str:
    if ctx.lang == "kk":
        return person_kk(ctx, n, case if isinstance(case, str) else "")
    if ctx.lang == "en":
        return person_en(ctx, n)
    return person_ru(ctx, n, case if isinstance(case, int) else 0)


def _address(ctx: Ctx) -> str:
    return {"kk": address_kk, "en": address_en}.get(ctx.lang, address_ru)(ctx.rng)


SLOTS: dict[str, Callable[[Ctx], Piece]] = {
    "IIN": lambda c: _ent("KZ_IIN", make_iin(c.rng, c.person().birth, c.person().sex)),
    "IIN2": lambda c: _ent("KZ_IIN", make_iin(c.rng, c.person(1).birth, c.person(1).sex)),
    "BIN": lambda c: _ent("KZ_BIN", make_bin(c.rng)),
    "PHONE": lambda c: _ent("PHONE_NUMBER", write_mobile(c.rng, mobile_digits(c.rng))),
    "PHONE2": lambda c: _ent("PHONE_NUMBER", write_mobile(c.rng, mobile_digits(c.rng))),
    "LANDLINE": lambda c: _ent("PHONE_NUMBER", landline(c.rng)),
    "EMAIL": lambda c: _email(c, EMAIL_DOMAINS),
    "EMAIL2": lambda c: _email(c, EMAIL_DOMAINS, 1),
    "EMAIL_GOV": lambda c: _email(c, GOV_DOMAINS),
    "EMAIL_CORP": lambda c: _email(c, CORP_DOMAINS),
    "IBAN": lambda c: _ent("IBAN_CODE", make_iban(c.rng)),
    "CARD": lambda c: _ent("CREDIT_CARD", make_card(c.rng)),
    "CARD_MIR": lambda c: _ent("CREDIT_CARD", make_card(c.rng, "mir")),
    "PASSPORT": lambda c: _ent("KZ_PASSPORT", make_passport(c.rng)),
    "IDCARD": lambda c: _ent("KZ_ID_CARD", f"0{c.rng.randrange(10 ** 7, 10 ** 8):08d}"),
    "IP": lambda c: _ent("IP_ADDRESS", make_ip(c.rng)),
    "PLATE": lambda c: _ent("KZ_VEHICLE_PLATE", make_plate(c.rng)),
    "PERSON": lambda c: _ent("PERSON", _person(c, 0)),
    "PERSON2": lambda c: _ent("PERSON", _person(c, 1)),
    "PERSON3": lambda c: _ent("PERSON", _person(c, 2)),
    "PERSON_GEN": lambda c: _ent("PERSON", _person(c, 0, 1 if c.lang != "kk" else "gen")),
    "PERSON_DAT": lambda c: _ent("PERSON", _person(c, 0, 2 if c.lang != "kk" else "dat")),
    "PERSON2_GEN": lambda c: _ent("PERSON", _person(c, 1, 1 if c.lang != "kk" else "gen")),
    "PERSON_INIT": lambda c: _ent("PERSON", person_kk_initials(c) if c.lang == "kk" else person_ru_initials(c)),
    "PERSON2_INIT": lambda c: _ent("PERSON", person_kk_initials(c, 1) if c.lang == "kk" else person_ru_initials(c, 1)),
    "PERSON_RU": lambda c: _ent("PERSON", person_ru(c, 0)),
    "PERSON_KK": lambda c: _ent("PERSON", person_kk(c, 0)),
    "PERSON_LAT": lambda c: _ent("PERSON", person_kk_lat(c, 0)),
    "PERSON2_LAT": lambda c: _ent("PERSON", person_kk_lat(c, 1)),
    "PERSON_EN": lambda c: _ent("PERSON", person_en(c, 0)),
    "ADDRESS": lambda c: _ent("ADDRESS", _address(c)),
    "ADDRESS_RU": lambda c: _ent("ADDRESS", address_ru(c.rng)),
    "ADDRESS_EN": lambda c: _ent("ADDRESS", address_en(c.rng)),
    "DOB": lambda c: dob_piece(c),
    "DOB2": lambda c: dob_piece(c, 1),
    # hard negatives
    "N_BAD12": lambda c: _neg("bad_checksum_12", bad_twelve(c.rng)),
    "N_DATE12": lambda c: _neg("impossible_date_12", impossible_date_twelve(c.rng)),
    "N_ORDER": lambda c: _neg("order_number", order_number(c.rng)),
    "N_CONTRACT": lambda c: _neg("contract_number", c.rng.choice(
        [f"{c.rng.randrange(1, 999)}/{c.rng.choice(['2023', '2024', '2025'])}-КЗ", f"ДКП-{c.rng.randrange(10, 999)}/24",
         f"KZ-{c.rng.randrange(1000, 9999)}-{c.rng.randrange(10, 99)}", f"{c.rng.randrange(100, 9999)}-ОД"])),
    "N_DATE": lambda c: _neg("date_without_birth_context", other_date(c)),
    "N_NINE": lambda c: _neg("nine_digits_without_context", f"{c.rng.randrange(10 ** 8, 10 ** 9)}"),
    "N_SVC": lambda c: _neg("service_number", c.rng.choice(["102", "103", "112", "101", "104", "1414", "*141#",
                                                             "*100#", "*111#", "1408"])),
    "N_AMOUNT": lambda c: _neg("amount", c.rng.choice(
        [f"{c.rng.randrange(1, 999)} {c.rng.randrange(1000):03d} тг", f"{c.rng.randrange(1, 99)} {c.rng.randrange(1000):03d}"
         f" {c.rng.randrange(1000):03d},00 KZT", f"{c.rng.randrange(1000, 999999)} ₸",
         f"${c.rng.randrange(1, 99)},{c.rng.randrange(1000):03d}.00"])),
    "N_BADLUHN": lambda c: _neg("card_failing_luhn", make_card(c.rng, valid=False)),
    "N_BADIBAN": lambda c: _neg("iban_bad_check_digits", make_iban(c.rng, valid=False)),
    "N_VERSION": lambda c: _neg("version_number", f"{c.rng.randrange(1, 12)}.{c.rng.randrange(0, 30)}.{c.rng.randrange(0, 9)}"),
    "N_TIME": lambda c: _neg("time", f"{c.rng.randrange(8, 20):02d}:{c.rng.choice(['00', '15', '30', '45'])}"),
    "N_DURATION": lambda c: _neg("amount", f"{c.rng.randrange(2, 60)}"),
}


# --- templates ------------------------------------------------------------------------------------
# (lang, domain, how many records, text, hard-negative tags carried by the literal text itself)

Template = tuple[str, str, int, str, tuple[str, ...]]

TEMPLATES: list[Template] = [
    # Russian — CRM, bank, support, HR, leaks, court/notary, government letters
    ("ru", "crm", 7, "Клиент: [[PERSON]], ИИН [[IIN]], тел. [[PHONE]], e-mail: [[EMAIL]]. Просит перезвонить после [[N_TIME]].", ()),
    ("ru", "crm", 6, "Звонил [[PERSON]] по заказу № [[N_ORDER]], недоволен доставкой. Перезвонить на [[PHONE]].", ()),
    ("ru", "crm", 5, "Карточка клиента\nФИО: [[PERSON]]\nДата рождения: [[DOB]]\nАдрес: [[ADDRESS]]\nМоб.: [[PHONE]]", ()),
    ("ru", "bank", 7, "Выписка по счету [[IBAN]] за период с [[N_DATE]] по [[N_DATE]]. Владелец: [[PERSON]], ИИН [[IIN]]. Остаток: [[N_AMOUNT]].", ()),
    ("ru", "bank", 6, "Перевод [[N_AMOUNT]] с карты [[CARD]] на карту [[CARD_MIR]] выполнен. Код операции [[N_ORDER]].", ()),
    ("ru", "bank", 5, "Клиенту [[PERSON_DAT]] одобрен кредит на сумму [[N_AMOUNT]] на [[N_DURATION]] месяцев. Договор № [[N_CONTRACT]] от [[N_DATE]].", ("amount",)),
    ("ru", "bank", 5, "Номер транзакции [[N_BADLUHN]], статус: отклонено. Повторите попытку или позвоните в контакт-центр [[N_SVC]].", ()),
    ("ru", "support", 6, "Оператор: Добрый день! Назовите, пожалуйста, ИИН.\nКлиент: [[IIN]]\nОператор: Спасибо, [[PERSON]], вижу вашу заявку от [[N_DATE]].", ()),
    ("ru", "support", 5, "Пользователь пишет, что не может войти в приложение с IP [[IP]], версия приложения [[N_VERSION]]. Почта для связи [[EMAIL]].", ()),
    ("ru", "support", 5, "Для проверки баланса наберите [[N_SVC]], при утере карты звоните [[N_SVC]]. Служба поддержки работает с [[N_TIME]].", ()),
    ("ru", "hr", 6, "Приказ № [[N_CONTRACT]] от [[N_DATE]]. Принять на работу [[PERSON_GEN]] ([[DOB]] г.р., ИИН [[IIN]]) на должность бухгалтера с окладом [[N_AMOUNT]].", ()),
    ("ru", "hr", 5, "Сотрудник: [[PERSON_INIT]]\nУдостоверение личности № [[IDCARD]] выдано МВД РК [[N_DATE]]\nТабельный номер: [[N_NINE]]", ()),
    ("ru", "hr", 5, "Анкета кандидата. [[PERSON]], родился [[DOB]], проживает по адресу: [[ADDRESS]]. Паспорт [[PASSPORT]].", ()),
    ("ru", "leak", 6, "[[IIN]];[[PERSON]];[[PHONE]];[[ADDRESS]]", ()),
    ("ru", "leak", 5, "{\"fio\": \"[[PERSON]]\", \"iin\": \"[[IIN]]\", \"phone\": \"[[PHONE]]\", \"card\": \"[[CARD]]\"}", ()),
    ("ru", "leak", 4, "🔎 Результат поиска по номеру [[PHONE]]:\nФИО: [[PERSON]]\nД.р.: [[DOB]]\nАвто: Toyota Camry, госномер [[PLATE]]\nПочта: [[EMAIL]]", ()),
    ("ru", "court", 5, "Истец [[PERSON]], ИИН [[IIN]], проживающий по адресу: [[ADDRESS]], обратился в суд с иском к ТОО «Альфа-Строй» (БИН [[BIN]]) о взыскании [[N_AMOUNT]].", ("organization",)),
    ("ru", "court", 4, "Нотариус [[PERSON2_INIT]] удостоверяет, что доверенность подписана [[PERSON_INIT]] в ее присутствии. Зарегистрировано в реестре за № [[N_CONTRACT]].", ()),
    ("ru", "court", 4, "Решение по делу № [[N_CONTRACT]] вынесено [[N_DATE]]. Ответчик АО «Казахтелеком», БИН [[BIN]].", ("organization",)),
    ("ru", "gov", 5, "На Ваше обращение от [[N_DATE]] сообщаем: заявление [[PERSON_GEN]] рассмотрено. Исполнитель: [[PERSON2_INIT]], тел. [[LANDLINE]], [[EMAIL_GOV]].", ()),
    ("ru", "gov", 4, "Акимат города Алматы информирует о ремонте проспекта Абая и улицы Толе би с [[N_DATE]]. Справки по телефону [[N_SVC]].", ("street_named_after_person", "city", "organization")),
    ("ru", "gov", 4, "Автомобиль с государственным номером [[PLATE]] зафиксирован камерой на пр. Назарбаева в [[N_TIME]]. Владелец: [[PERSON]].", ("street_named_after_person",)),
    ("ru", "negative", 5, "Заказ № [[N_ORDER]] оплачен [[N_DATE]]. Сумма: [[N_AMOUNT]]. Номер накладной [[N_NINE]].", ()),
    ("ru", "negative", 5, "Счет-фактура № [[N_CONTRACT]], ИИК [[N_BADIBAN]] (реквизиты уточняются). Контрольный номер [[N_BAD12]].", ()),
    ("ru", "negative", 5, "В Астане и Алматы прошли встречи с представителями Халык Банка и Kaspi. Университет имени аль-Фараби открыл набор [[N_DATE]].", ("city", "organization", "name_inside_organization")),
    ("ru", "negative", 4, "Номер бланка [[N_DATE12]] не прошел проверку. Дата выдачи [[N_DATE]]. Экспертиза назначена на [[N_TIME]].", ()),
    ("ru", "negative", 4, "Памятник Абаю на площади Республики отреставрируют к [[N_DATE]]. Бюджет проекта — [[N_AMOUNT]].", ("name_inside_landmark",)),
    ("ru", "bank", 4, "Реквизиты получателя: [[PERSON]], ИИН [[IIN]], ИИК [[IBAN]], АО «Kaspi Bank», БИК CASPKZKA.", ("organization",)),
    ("ru", "crm", 4, "Примечание: [[PERSON]] сменил номер, новый — [[PHONE]], старый [[PHONE2]] не активен.", ()),
    ("ru", "hr", 4, "Ведомость: [[PERSON_INIT]] — [[N_AMOUNT]]; [[PERSON2_INIT]] — [[N_AMOUNT]]. Основание: приказ № [[N_CONTRACT]].", ()),
    ("ru", "support", 4, "Перезвоните мне на [[PHONE]], я [[PERSON]], дата рождения [[DOB]].", ()),

    # Kazakh
    ("kk", "crm", 7, "Клиент: [[PERSON]], ЖСН [[IIN]], тел: [[PHONE]], пошта: [[EMAIL]].", ()),
    ("kk", "crm", 5, "[[PERSON]] тапсырыс № [[N_ORDER]] бойынша хабарласты, [[PHONE]] нөміріне қайта қоңырау шалу керек.", ()),
    ("kk", "bank", 6, "[[PERSON_GEN]] шотынан [[IBAN]] [[N_AMOUNT]] аударылды. Операция күні: [[N_DATE]].", ()),
    ("kk", "bank", 5, "Карта [[CARD]] бұғатталды. Сұрақтар бойынша [[N_SVC]] нөміріне хабарласыңыз.", ()),
    ("kk", "bank", 4, "Mir картасы [[CARD_MIR]] тіркелді, иесі: [[PERSON]].", ()),
    ("kk", "support", 6, "Оператор: Сәлеметсіз бе! ЖСН-іңізді айтыңызшы.\nКлиент: [[IIN]], мен [[PERSON]].\nОператор: Рахмет, өтінішіңіз [[N_DATE]] тіркелген.", ()),
    ("kk", "support", 4, "Балансты тексеру үшін [[N_SVC]] теріңіз. Қолдау қызметі [[N_TIME]] бастап жұмыс істейді.", ()),
    ("kk", "hr", 6, "Бұйрық № [[N_CONTRACT]]. [[PERSON_DAT]] ([[DOB]] туған, ЖСН [[IIN]]) бухгалтер лауазымы берілсін.", ()),
    ("kk", "hr", 5, "Қызметкер: [[PERSON_INIT]]\nЖеке куәлік № [[IDCARD]], берген күні [[N_DATE]]\nТабель нөмірі: [[N_NINE]]", ()),
    ("kk", "hr", 5, "Үміткер [[PERSON]], туған күні: [[DOB]], мекенжайы: [[ADDRESS]]. Төлқұжат [[PASSPORT]].", ()),
    ("kk", "leak", 5, "[[IIN]] | [[PERSON]] | [[PHONE]] | [[ADDRESS]]", ()),
    ("kk", "leak", 4, "Нөмір бойынша іздеу [[PHONE]]:\nАты-жөні: [[PERSON]]\nТуған күні: [[DOB]]\nКөлік нөмірі: [[PLATE]]", ()),
    ("kk", "court", 5, "Талапкер [[PERSON]], ЖСН [[IIN]], мекенжайы: [[ADDRESS]], «Болашақ Құрылыс» ЖШС-не (БСН [[BIN]]) қатысты сотқа жүгінді.", ("organization",)),
    ("kk", "court", 4, "Нотариус [[PERSON2_INIT]] сенімхатқа [[PERSON_INIT]] өз қолымен қол қойғанын куәландырады. Тізілім № [[N_CONTRACT]].", ()),
    ("kk", "gov", 5, "Сіздің [[N_DATE]] өтінішіңізге жауап: [[PERSON_GEN]] арызы қаралды. Орындаушы: [[PERSON2_INIT]], тел. [[LANDLINE]], [[EMAIL_GOV]].", ()),
    ("kk", "gov", 4, "Алматы қаласының әкімдігі Абай даңғылы мен Төле би көшесін жөндеу [[N_DATE]] басталатынын хабарлайды. Анықтама: [[N_SVC]].", ("street_named_after_person", "city", "organization")),
    ("kk", "gov", 4, "[[PLATE]] мемлекеттік нөмірлі көлік [[N_TIME]] Қабанбай батыр даңғылында тіркелді. Иесі: [[PERSON]].", ("street_named_after_person",)),
    ("kk", "negative", 5, "Тапсырыс № [[N_ORDER]] [[N_DATE]] төленді. Сомасы: [[N_AMOUNT]]. Жүкқұжат нөмірі [[N_NINE]].", ()),
    ("kk", "negative", 5, "Астана мен Алматыда Қазпошта және Kaspi өкілдерімен кездесу өтті. Әл-Фараби атындағы ҚазҰУ [[N_DATE]] қабылдауды бастады.", ("city", "organization", "name_inside_organization")),
    ("kk", "negative", 4, "Бланк нөмірі [[N_BAD12]] тексеруден өтпеді, бақылау коды [[N_DATE12]]. Нұсқа [[N_VERSION]].", ()),
    ("kk", "crm", 4, "[[PERSON]] нөмірін ауыстырды: жаңасы [[PHONE]], ескісі [[PHONE2]].", ()),
    ("kk", "support", 4, "Маған [[PHONE]] нөміріне қоңырау шалыңыз, мен [[PERSON]], туған күнім [[DOB]].", ()),
    ("kk", "bank", 4, "Алушы: [[PERSON]], ЖСН [[IIN]], ЖСК [[IBAN]], «Halyk Bank» АҚ.", ("organization",)),

    # Kazakh in Latin script (messengers)
    ("kk", "chat", 5, "Salem! Men [[PERSON_LAT]], nomirim [[PHONE]], JSN [[IIN]]. Kartam [[CARD]] bugattaldy.", ()),
    ("kk", "chat", 4, "[[PERSON_LAT]] jazdy: poshtam [[EMAIL]], tugan kunim [[DOB]].", ()),

    # English
    ("en", "crm", 7, "Customer [[PERSON]] (IIN [[IIN]]) called from [[PHONE]] about order #[[N_ORDER]]. Email: [[EMAIL]].", ()),
    ("en", "crm", 5, "Contact card\nName: [[PERSON]]\nDate of birth: [[DOB]]\nAddress: [[ADDRESS]]\nMobile: [[PHONE]]", ()),
    ("en", "bank", 6, "Statement for account [[IBAN]], holder [[PERSON]], period [[N_DATE]] to [[N_DATE]]. Closing balance [[N_AMOUNT]].", ()),
    ("en", "bank", 5, "Payment of [[N_AMOUNT]] from card [[CARD]] declined; transaction ID [[N_BADLUHN]]. Call [[N_SVC]] for help.", ()),
    ("en", "bank", 4, "New Mir card [[CARD_MIR]] issued to [[PERSON]], delivered to [[ADDRESS]].", ()),
    ("en", "support", 6, "Agent: Please confirm your IIN.\nUser: [[IIN]]\nAgent: Thanks, [[PERSON]]. Your ticket from [[N_DATE]] is open.", ()),
    ("en", "support", 5, "Login attempts from IP [[IP]] blocked at [[N_TIME]]; app version [[N_VERSION]]. Notify [[EMAIL]].", ()),
    ("en", "support", 4, "To check your balance dial [[N_SVC]]. Emergency services: [[N_SVC]]. Office hours from [[N_TIME]].", ()),
    ("en", "hr", 6, "Offer letter: [[PERSON]], born [[DOB]], passport [[PASSPORT]], will join on [[N_DATE]] with a salary of [[N_AMOUNT]].", ()),
    ("en", "hr", 5, "Employee [[PERSON]], ID card No. [[IDCARD]], employee number [[N_NINE]], phone [[PHONE]].", ()),
    ("en", "leak", 5, "[[IIN]],[[PERSON]],[[PHONE]],[[EMAIL]],[[IP]]", ()),
    ("en", "leak", 4, "{\"name\": \"[[PERSON]]\", \"dob\": \"[[DOB]]\", \"plate\": \"[[PLATE]]\", \"ip\": \"[[IP]]\"}", ()),
    ("en", "court", 5, "Plaintiff [[PERSON]], IIN [[IIN]], residing at [[ADDRESS]], filed a claim against Kazakhtelecom JSC (BIN [[BIN]]).", ("organization",)),
    ("en", "court", 4, "Case [[N_CONTRACT]]: the court heard [[PERSON]] and [[PERSON2]] on [[N_DATE]].", ()),
    ("en", "gov", 5, "Re your request of [[N_DATE]]: the application of [[PERSON]] has been reviewed. Officer: [[PERSON2]], tel. [[LANDLINE]], [[EMAIL_GOV]].", ()),
    ("en", "gov", 4, "Vehicle [[PLATE]] was recorded on Abay Ave at [[N_TIME]]; registered owner [[PERSON]].", ("street_named_after_person",)),
    ("en", "negative", 5, "Invoice [[N_CONTRACT]] paid on [[N_DATE]], amount [[N_AMOUNT]], tracking number [[N_NINE]].", ()),
    ("en", "negative", 5, "Roadworks on Abay Avenue and Tole Bi Street in Almaty start on [[N_DATE]]. Halyk Bank and Air Astana offices stay open.", ("street_named_after_person", "city", "organization")),
    ("en", "negative", 4, "Reference [[N_BAD12]] failed validation; form number [[N_DATE12]]; IBAN on file [[N_BADIBAN]] is invalid.", ()),
    ("en", "negative", 4, "Al-Farabi Kazakh National University and Nazarbayev University announced scholarships worth [[N_AMOUNT]] on [[N_DATE]].", ("name_inside_organization",)),
    ("en", "hr", 4, "Payroll: [[PERSON]] [[N_AMOUNT]]; [[PERSON2]] [[N_AMOUNT]]. Approved by [[PERSON3]].", ()),
    ("en", "support", 4, "Hi, this is [[PERSON]], born on [[DOB]], my number is [[PHONE]].", ()),
    ("en", "bank", 4, "Beneficiary: [[PERSON]], IIN [[IIN]], IBAN [[IBAN]], Halyk Bank, SWIFT HSBKKZKX.", ("organization",)),

    # mixed-language lines
    ("mixed", "crm", 6, "Клиент [[PERSON_LAT]], IIN [[IIN]], тел [[PHONE]], email [[EMAIL]] — callback requested.", ()),
    ("mixed", "chat", 5, "Сәлем! Мой номер [[PHONE]], ЖСН [[IIN]], почта [[EMAIL_CORP]]. Thanks!", ()),
    ("mixed", "leak", 5, "iin=[[IIN]] fio=\"[[PERSON_RU]]\" phone=[[PHONE]] ip=[[IP]] card=[[CARD]]", ()),
    ("mixed", "bank", 4, "Transfer to [[PERSON_KK]] (ЖСН [[IIN]]) IBAN [[IBAN]], сумма [[N_AMOUNT]].", ()),
    ("mixed", "hr", 4, "Employee: [[PERSON_RU]], дата рождения [[DOB]], ID card № [[IDCARD]], address: [[ADDRESS_EN]].", ()),
    ("mixed", "gov", 4, "Хат: [[PERSON_KK]] (туған күні [[DOB]]) — contact [[EMAIL_GOV]], [[LANDLINE]].", ()),
    ("mixed", "support", 4, "Order [[N_ORDER]] / заказ от [[N_DATE]] — звоните [[N_SVC]] or dial [[N_SVC]].", ()),
    ("mixed", "court", 4, "Ответчик [[PERSON_RU]], passport [[PASSPORT]], проживает: [[ADDRESS_RU]].", ()),
    ("mixed", "crm", 4, "Авто [[PLATE]], owner [[PERSON_LAT]], phone [[PHONE]], IP входа [[IP]].", ()),
    ("mixed", "negative", 4, "Meeting in Астана at [[N_TIME]], бюджет [[N_AMOUNT]], ref [[N_BAD12]], v[[N_VERSION]].", ("city",)),
    # more documents, organisations, vehicles and network identifiers
    ("ru", "bank", 4, "Поставщик: ИП [[PERSON_INIT]] (ИИН [[IIN]]); покупатель: ТОО «Техносервис», БИН [[BIN]]. Счет № [[N_CONTRACT]].", ("organization",)),
    ("ru", "hr", 4, "Документы сотрудника: паспорт [[PASSPORT]], удостоверение личности [[IDCARD]], выданы МВД РК [[N_DATE]].", ()),
    ("ru", "support", 4, "Вход в личный кабинет [[EMAIL]] с адресов [[IP]] и [[IP]] в [[N_TIME]]. Сборка [[N_VERSION]].", ()),
    ("ru", "gov", 4, "Постановление о штрафе: автомобиль [[PLATE]], владелец [[PERSON]], сумма [[N_AMOUNT]], УИН [[N_NINE]].", ()),
    ("kk", "bank", 4, "Жеткізуші: «Астана Тех» ЖШС, БСН [[BIN]], ЖСК [[IBAN]]. Шот-фактура № [[N_CONTRACT]].", ("organization",)),
    ("kk", "hr", 4, "Құжаттар: төлқұжат № [[PASSPORT]], жеке куәлік № [[IDCARD]], берілген күні [[N_DATE]].", ()),
    ("kk", "negative", 4, "Төтенше қызметтер: [[N_SVC]] полиция, [[N_SVC]] жедел жәрдем. Балансты [[N_SVC]] арқылы тексеріңіз.", ()),
    ("kk", "support", 3, "[[EMAIL]] аккаунтына [[IP]] мекенжайынан кіру әрекеті болды.", ()),
    ("en", "hr", 4, "Passport no. [[PASSPORT]] expires on [[N_DATE]]; national ID card [[IDCARD]] on file for [[PERSON]].", ()),
    ("en", "gov", 4, "Parking permit for [[PLATE]] and [[PLATE]] issued to [[PERSON]]; permit number [[N_NINE]].", ()),
    ("en", "bank", 4, "Supplier: Steppe Logistics LLP, BIN [[BIN]], IBAN [[IBAN]], contract [[N_CONTRACT]].", ("organization",)),
    ("en", "support", 3, "Firewall log: [[N_TIME]] DENY src=[[IP]] dst=[[IP]] port 443, rule v[[N_VERSION]].", ()),

]


# --- rendering ------------------------------------------------------------------------------------

def render(template: str, ctx: Ctx) -> tuple[str, list[dict[str, object]], list[str]]:
    """Fill a template's slots left to right, keeping exact offsets of every labelled piece."""
    out: list[str] = []
    entities: list[dict[str, object]] = []
    negatives: list[str] = []
    pos = 0
    length = 0
    for match in SLOT.finditer(template):
        literal = template[pos:match.start()]
        out.append(literal)
        length += len(literal)
        text, labels, tags = SLOTS[match.group(1)](ctx)
        for start, end, kind in labels:
            entities.append({"type": kind, "start": length + start, "end": length + end})
        negatives.extend(tags)
        out.append(text)
        length += len(text)
        pos = match.end()
    out.append(template[pos:])
    return "".join(out), entities, negatives


def build_records(seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    counters: dict[str, int] = {}
    for lang, domain, count, template, text_tags in TEMPLATES:
        for _ in range(count):
            # "mixed" records draw names and date styles from a random one of the three languages.
            fill_lang = rng.choice(["ru", "kk", "en"]) if lang == "mixed" else lang
            ctx = Ctx(rng=rng, lang=fill_lang)
            text, entities, negatives = render(template, ctx)
            counters[lang] = counters.get(lang, 0) + 1
            records.append({
                "id": f"{lang}-{counters[lang]:04d}",
                "lang": lang,
                "domain": domain,
                "text": text,
                "entities": entities,
                "hard_negatives": sorted(set(negatives) | set(text_tags)),
            })
    return records


def dumps(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    content = dumps(build_records())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != content:
            print(f"{args.out} is out of date; run python -m qorgau.discovery.corpus.build", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(content, encoding="utf-8", newline="\n")
    print(f"wrote {content.count(chr(10))} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
