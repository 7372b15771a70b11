"""Which table columns hold personal data, and of which kind (L-PD-SPLIT).

A column is ``identifying`` (it names a person: IIN, full name, phone, document, card, address …),
``personal_data`` (the data itself about a person: diagnosis, salary, purchases, location, education)
or ``none``. Special categories get ``sensitive=True`` and a ``special_category``: health, biometric
and financial, as the issue asks, plus religion and ethnicity — qorgau flags those too because
biometric categorisation and discrimination are prohibited AI practices (L-AI-PROHIBITED), so a
dataset holding them needs the same care; this is stricter than the PD law's own categories (L-PD-CAT).

Two kinds of evidence, and ``rule`` says which one decided:

* the column **name** in Kazakh, Russian or English, in snake_case, camelCase, Cyrillic or as a
  common abbreviation (``ИИН``, ``client_iin``, ``ЖСН``, ``fio``, ``аты_жөні``, ``birthDate``,
  ``диагноз_код``, ``жалақы``) → ``rule="name: иин"``;
* the sampled **values**: the share of non-empty values in which ``scan`` finds an entity type
  (≥ 60 % decides the column: ``rule="values: 93% KZ_IIN"``). Without a ``scan`` function, whole
  values are checked with :mod:`qorgau.identifiers`' validators (IIN, BIN, card, IBAN, phone,
  e-mail, passport, IP) — fast, and enough for typed columns.

Validated identifiers found in the values beat the name (a column called ``phone`` full of IINs holds
IINs); special categories are only knowable from the name, so values never downgrade them.
Column names are schema, not personal data, so ``rule`` may quote them; values are never quoted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qorgau.identifiers import (
    IdentifierError,
    is_valid_bin,
    is_valid_card,
    is_valid_iban,
    is_valid_iin,
    normalize_email,
    parse_passport,
    parse_phone,
)

from .types import Finding

IDENTIFYING = "identifying"
PERSONAL_DATA = "personal_data"
NONE = "none"

VALUE_SHARE_DECIDES = 0.6  # share of non-empty values with one type that makes the column that type
VALUE_SHARE_NOTICE = 0.2  # below the deciding share, free text with this many hits still identifies
# Types a validator confirms (checksum, Luhn, mod-97, number ranges): strong enough to override a name.
VALIDATED_TYPES = frozenset({"KZ_IIN", "KZ_BIN", "CREDIT_CARD", "IBAN_CODE", "PHONE_NUMBER", "EMAIL_ADDRESS",
                             "KZ_PASSPORT", "IP_ADDRESS", "KZ_VEHICLE_PLATE"})


@dataclass(frozen=True, slots=True)
class ColumnClass:
    """The verdict on one column. ``rule`` names the evidence; ``confidence`` is 0–1."""

    category: str  # "identifying" | "personal_data" | "none"
    entity_type: str | None
    sensitive: bool
    special_category: str | None  # "health" | "biometric" | "financial" | "religion" | "ethnicity"
    rule: str
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return {"category": self.category, "entity_type": self.entity_type, "sensitive": self.sensitive,
                "special_category": self.special_category, "rule": self.rule,
                "confidence": round(self.confidence, 3)}


@dataclass(frozen=True, slots=True)
class _NameRule:
    pattern: re.Pattern[str]
    category: str
    entity_type: str | None
    special: str | None
    confidence: float


def _rule(words: str, category: str, entity_type: str | None = None, special: str | None = None,
          confidence: float = 0.9) -> _NameRule:
    """``words``: alternatives matched as whole tokens of the normalized name; a trailing ``*`` on an
    alternative lets it match as a word stem (``рожден*`` matches ``рождения``)."""
    alternatives = []
    for word in words.split("|"):
        if word.endswith("*"):
            alternatives.append(re.escape(word[:-1]) + r"[^_]*")
        else:
            alternatives.append(re.escape(word))
    pattern = re.compile(r"(?:^|_)(" + "|".join(alternatives) + r")(?:_|$)")
    return _NameRule(pattern, category, entity_type, special, confidence)


ID, PD = IDENTIFYING, PERSONAL_DATA

# Checked in order: the first match decides, so compound names come before their parts
# (card_holder_name is a PERSON, not a card; ip_address is an IP, not an address).
NAME_RULES: tuple[_NameRule, ...] = (
    _rule("card_holder_name|cardholder_name|cardholder|card_holder|holder_name|account_holder", ID, "PERSON"),
    _rule("mother_maiden_name|maiden_name", ID, "PERSON"),
    _rule("birth_place|place_of_birth|место_рождения|туған_жері|туылған_жері", ID, "ADDRESS", confidence=0.8),
    _rule("iin|иин|жсн|iin_bin|иин_бин|жсн_бсн|individual_identification_number", ID, "KZ_IIN", confidence=0.95),
    _rule("bin|бин|бсн|business_identification_number", ID, "KZ_BIN", confidence=0.85),
    _rule("date_of_birth|birth_date|birthdate|birthday|dob|bdate|date_birth|дата_рождения|датарождения|др|д_р|"
          "рожден*|туған_күні|туған_күн*|туылған_күні|туылған_күн*|tugan_kuni|tugan_kun*|tuğan_kün*|tugan_kün*|"
          "tuylgan_kun*|birth_year|year_of_birth|год_рождения|туған_жылы|tugan_jyly|tugan_zhyly", ID, "DATE_OF_BIRTH",
          confidence=0.95),
    _rule("ip|ip_address|ip_addr|ipaddress|ipaddr|remote_addr|client_ip|ip_адрес|ip_мекенжай*", ID, "IP_ADDRESS"),
    _rule("email|e_mail|mail|email_address|почта|эл_почта|электронная_почта|электрондық_пошта|пошта|емейл|имейл",
          ID, "EMAIL_ADDRESS", confidence=0.95),
    _rule("phone|phone_number|phonenumber|mobile|msisdn|tel|telephone|cell|телефон*|тел|моб*|сотовый|нөмір*|"
          "ұялы|номер_телефона|телефон_нөмірі", ID, "PHONE_NUMBER", confidence=0.9),
    _rule("iban|иик|жск|account_number|account_no|acc_number|bank_account|номер_счета|счет|счёт|шот|шот_нөмірі",
          ID, "IBAN_CODE", confidence=0.85),
    _rule("card_number|card_no|card_num|cardnumber|pan|card_pan|номер_карты|карта|карточка|карта_нөмірі|картасы",
          ID, "CREDIT_CARD", confidence=0.85),
    _rule("passport|passport_number|passport_no|паспорт*|төлқұжат*", ID, "KZ_PASSPORT", confidence=0.9),
    _rule("id_card|idcard|id_card_number|identity_card|national_id|удостоверение*|уд_личности|удл|жеке_куәлік*|"
          "куәлік*|udostoverenie*|udostovereniya*|ud_lichnosti|jeke_kuälik*|jeke_kualik*|zheke_kualik*|zheke_kuelik*",
          ID, "KZ_ID_CARD", confidence=0.85),
    _rule("document_number|doc_number|doc_no|номер_документа|құжат_нөмірі|document_id", ID, None, confidence=0.75),
    _rule("plate|license_plate|licence_plate|plate_number|vehicle_number|госномер|гос_номер|грнз|номер_авто|"
          "көлік_нөмірі|gos_nomer|gosnomer|grnz|nomer_avto|kolik_nomiri|kölik_nömiri", ID, "KZ_VEHICLE_PLATE",
          confidence=0.9),
    _rule("mac|mac_address|imei|device_id|imsi", ID, None, confidence=0.8),
    _rule("username|user_name|login|логин|nickname", ID, None, confidence=0.7),
    _rule("rnn|рнн|инн|tax_id|taxpayer_id|taxpayer_number", ID, None, confidence=0.85),
    _rule("fio|фио|full_name|fullname|аты_жөні|атыжөні|тегі_аты|person_name|client_name|customer_name|"
          "employee_name|patient_name|contact_name|owner_name|recipient_name|sender_name|payer_name|"
          "beneficiary_name|first_name|firstname|given_name|last_name|lastname|surname|family_name|"
          "middle_name|patronymic|фамилия|имя|отчество|аты|тегі|әкесінің_аты|name|наименование_клиента|"
          "aty_joni|aty_zhoni|aty_jöni|tegi|akesinin_aty",
          ID, "PERSON", confidence=0.85),
    _rule("address|addr|адрес*|мекенжай*|мекен_жай|street|улица|көше*|residence|место_жительства|тұрғылықты*|"
          "registration_address|home_address", ID, "ADDRESS", confidence=0.85),
    # special categories
    _rule("diagnosis|diagnoses|diag|диагноз*|мкб*|icd|icd10|icd_10|disease|illness|болезн*|заболеван*|ауру*|"
          "symptom*|симптом*|medication|medicine|препарат*|рецепт*|prescription|blood_type|blood_group|"
          "группа_крови|allergy|allergies|аллерги*|disability|инвалидност*|мүгедек*|hiv|вич|pregnancy|"
          "беременност*|treatment|лечени*|анамнез|anamnesis|health|здоровь*|денсаулық*|medical|мед*|"
          "clinical|вакцин*|vaccination", PD, None, "health", 0.9),
    _rule("fingerprint|fingerprints|отпечат*|саусақ*|photo|photograph|фото*|сурет*|face|face_id|"
          "face_embedding|faceprint|лицо|бет_әлпеті|biometric*|биометри*|iris|радужк*|voice|voiceprint|голос|"
          "дауыс|dna|днк|selfie|palm", PD, None, "biometric", 0.9),
    _rule("salary|зарплата|зп|оклад|жалақы*|income|доход*|табыс*|balance|баланс|остаток|қалдық|debt|долг*|"
          "задолженност*|қарыз*|credit|кредит*|loan|займ*|несие*|transaction*|транзакци*|payment*|платеж*|"
          "платёж*|төлем*|credit_score|скоринг|tax|налог*|салық*|wage|wages|pension|пенси*|зейнетақы*|"
          "card_balance|overdraft|mortgage|ипотек*", PD, None, "financial", 0.85),
    _rule("religion|религи*|вероисповедани*|дін*|confession", PD, None, "religion", 0.9),
    _rule("ethnicity|ethnic*|nationality|национальност*|ұлты|ұлт|этнос*|race|раса", PD, None, "ethnicity", 0.85),
    # other personal data
    _rule("purchase*|покупк*|сатып_алу*|order_items|basket|корзин*|cart|receipt|чек", PD, confidence=0.75),
    _rule("geo|geolocation|lat|lon|lng|latitude|longitude|location*|геолокац*|координат*|местоположени*|"
          "орналасқан_жері|gps|coordinates", PD, confidence=0.8),
    _rule("education|образовани*|білім*|degree|diploma|диплом*|university|вуз|school|школа|мектеп", PD,
          confidence=0.8),
    _rule("gender|sex|пол|жынысы|жыныс|age|возраст|жасы|marital_status|семейное_положение|отбасылық_жағдай*|"
          "children|дети|балалар|job_title|должность|лауазым*|employer|место_работы|жұмыс_орны|"
          "criminal_record|судимост*|сотталған*", PD, confidence=0.75),
)

_CAMEL = re.compile(r"(?<=[a-zа-яәғқңөұүһі0-9])(?=[A-ZА-ЯӘҒҚҢӨҰҮҺІ])|(?<=[A-ZА-ЯӘҒҚҢӨҰҮҺІ])(?=[A-ZА-ЯӘҒҚҢӨҰҮҺІ][a-zа-яәғқңөұүһі])")
_SEPARATORS = re.compile(r"[^0-9a-zа-яёәғқңөұүһі]+")
_NAME_EXCEPTIONS = re.compile(
    r"(?:^|_)(product|company|org|organization|organisation|file|bank|city|street|category|item|service|"
    r"shop|store|merchant|brand|table|column|host|domain|project|department|branch|товар*|компани*|"
    r"организаци*|банк*|файл|ұйым*)(?:_|$)")


def normalize_column_name(name: str) -> str:
    """``clientIIN`` → ``client_iin``, ``Дата рождения`` → ``дата_рождения``, ``E-mail`` → ``e_mail``."""
    split = _CAMEL.sub("_", name.strip())
    return _SEPARATORS.sub("_", split.lower().replace("ё", "е")).strip("_")


def classify_by_name(name: str) -> ColumnClass | None:
    """The first name rule that matches, or None."""
    norm = normalize_column_name(name)
    if not norm:
        return None
    for rule in NAME_RULES:
        match = rule.pattern.search(norm)
        if match is None:
            continue
        if rule.entity_type == "PERSON" and match.group(1) == "name" and _NAME_EXCEPTIONS.search(norm):
            continue  # product_name, bank_name, file_name: a name, but not a person's
        confidence = rule.confidence
        if rule.entity_type == "PERSON" and norm == "name":
            confidence = 0.6  # a bare "name" column could name anything; values should confirm
        return ColumnClass(category=rule.category, entity_type=rule.entity_type, sensitive=rule.special is not None,
                           special_category=rule.special, rule=f"name: {match.group(1)}", confidence=confidence)
    return None


# --- values -------------------------------------------------------------------------------------

def value_type(value: str) -> str | None:
    """The identifier type a whole cell value is, checked with the identifiers validators, or None.

    The fallback when no scanner is given; ordered cheapest first.
    """
    v = value.strip()
    if not v or len(v) > 64:
        return None
    compact = v.replace(" ", "").replace("-", "")
    if compact.isascii() and compact.isdigit():
        n = len(compact)
        if n == 12:
            if is_valid_iin(compact):
                return "KZ_IIN"
            if is_valid_bin(compact):
                return "KZ_BIN"
        if 13 <= n <= 19 and is_valid_card(compact):
            return "CREDIT_CARD"
    if "@" in v:
        try:
            normalize_email(v)
            return "EMAIL_ADDRESS"
        except IdentifierError:
            return None
    if v[:2].upper() == "KZ" and len(compact) == 20 and is_valid_iban(v):
        return "IBAN_CODE"
    if v[0] in "NnНн" and len(v) <= 10:
        try:
            parse_passport(v)
            return "KZ_PASSPORT"
        except IdentifierError:
            pass
    if "." in v or ":" in v:
        try:
            ipaddress.ip_address(v)
            return "IP_ADDRESS"
        except ValueError:
            pass
    digits = sum(ch.isdigit() for ch in v)
    if 10 <= digits <= 12 and all(ch.isdigit() or ch in "+-() " for ch in v):
        try:
            parse_phone(v)
            return "PHONE_NUMBER"
        except IdentifierError:
            return None
    return None


def _value_shares(values: Sequence[str], scan: Callable[[str], list[Finding]] | None) -> dict[str, float]:
    """Share of values in which each type occurs (a value counts once per type)."""
    hits: dict[str, int] = {}
    for value in values:
        if scan is None:
            kind = value_type(value)
            kinds = {kind} if kind else set()
        else:
            kinds = {f.type for f in scan(value)}
        for kind in kinds:
            hits[kind] = hits.get(kind, 0) + 1
    return {kind: count / len(values) for kind, count in hits.items()}


def classify_column(name: str, sample_values: Sequence[str | None],
                    scan: Callable[[str], list[Finding]] | None = None) -> ColumnClass:
    """Classify one column from its name and a sample of its values (``None`` and blanks are skipped).

    ``scan`` is a discovery scanner's ``scan`` (e.g. ``Scanner.default().scan``); without it whole
    values are checked with the identifier validators only.
    """
    by_name = classify_by_name(name)
    values = [str(v) for v in sample_values if v is not None and str(v).strip()]
    shares = _value_shares(values, scan) if values else {}
    top_type, top_share = max(shares.items(), key=lambda kv: (kv[1], kv[0])) if shares else (None, 0.0)
    values_rule = f"values: {round(top_share * 100)}% {top_type}" if top_type else ""

    if by_name is not None:
        if top_type is not None and top_type == by_name.entity_type and top_share >= VALUE_SHARE_DECIDES:
            return _with(by_name, rule=f"{by_name.rule} + {values_rule}",
                         confidence=max(by_name.confidence, min(0.99, 0.5 + top_share / 2)))
        if by_name.category == PERSONAL_DATA and by_name.sensitive:
            return by_name  # special categories are known from the name only
        if (scan is not None and values and by_name.confidence < 0.7 and by_name.entity_type is not None
                and shares.get(by_name.entity_type, 0.0) < VALUE_SHARE_NOTICE):
            found = round(shares.get(by_name.entity_type, 0.0) * 100)
            return ColumnClass(NONE, None, False, None,
                               f"{by_name.rule}, but values: {found}% {by_name.entity_type}", 0.6)
        if top_type in VALIDATED_TYPES and top_share >= VALUE_SHARE_DECIDES and top_type != by_name.entity_type:
            return ColumnClass(IDENTIFYING, top_type, False, None, f"{values_rule} (overrides {by_name.rule})",
                               round(top_share, 3))
        return by_name

    if top_type is not None and top_share >= VALUE_SHARE_DECIDES:
        return ColumnClass(IDENTIFYING, top_type, False, None, values_rule, round(top_share, 3))
    if top_type is not None and top_share >= VALUE_SHARE_NOTICE:
        # Free text (comments, notes) where identifiers show up often enough to treat the column as holding them.
        return ColumnClass(IDENTIFYING, top_type, False, None, f"{values_rule} (free text)", round(top_share, 3))
    if not values:
        return ColumnClass(NONE, None, False, None, "no name rule matched; no values sampled", 0.5)
    seen = f"; values: {round(top_share * 100)}% {top_type}" if top_type else "; values: no personal data found"
    return ColumnClass(NONE, None, False, None, "no name rule matched" + seen, round(min(0.9, 1 - top_share), 3))


def _with(c: ColumnClass, *, rule: str, confidence: float) -> ColumnClass:
    return ColumnClass(c.category, c.entity_type, c.sensitive, c.special_category, rule, round(confidence, 3))


def classify_columns(columns: dict[str, Sequence[str | None]],
                     scan: Callable[[str], list[Finding]] | None = None) -> dict[str, ColumnClass]:
    """Classify every column of a table given as ``{name: sampled values}``."""
    return {name: classify_column(name, values, scan) for name, values in columns.items()}
