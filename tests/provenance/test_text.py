"""Signed inline labels for AI-generated text (qorgau/1, L-AI-LABEL): the story of a chat-bot answer that gets a
disclosure line and a marker, travels through editors, e-mail and web pages, and is checked by someone else.

The certificates are real X.509 chains built here with ``cryptography``: a root CA issuing an end-entity
certificate (EC P-256, P-384, RSA-PSS and Ed25519), plus self-signed and expired ones for the failure paths."""

from __future__ import annotations

import base64
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from qorgau.core.errors import InvalidInput
from qorgau.provenance.text import (
    TextSigner,
    canonical,
    cert_fingerprint,
    disclosure_line,
    label_text,
    read_text_label,
    verify_text,
)
from qorgau.provenance.texts import WARNING_TEXTS

NOW = datetime.now(timezone.utc)
ANSWER = ("Сәлеметсіз бе! Бұл жауапты чат-бот жазды: қазақ тілінде ә, ғ, қ, ң, ө, ұ, ү, һ, і әріптері бар.\n"
          "Этот ответ написал чат-бот. Ёлка и йод.\n"
          "The loan rate is 14.9 % per year.\n")
CLAIMS = {"register_id": "KZ-AI-2026-000042", "operator_bin": "123456789012", "operator_name": "Alpha Market LLP",
          "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}


# -- a small test CA ---------------------------------------------------------------------------------------------


def _name(cn: str, org: str = "Test Org") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _new_key(kind: str):  # type: ignore[no-untyped-def]
    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "PS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def _sign_with(key):  # type: ignore[no-untyped-def]
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _cert(subject: x509.Name, issuer: x509.Name, public, signing_key, *, ca: bool,  # type: ignore[no-untyped-def]
          not_before: datetime, not_after: datetime, digital_signature: bool = True) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(_usage(sign=digital_signature and not ca, ca=ca), critical=True)
            .sign(signing_key, _sign_with(signing_key)))


@dataclass
class Ca:
    root: x509.Certificate
    key: object
    kind: str

    def issue(self, cn: str = "AI content labels, BIN 123456789012", *, org: str = "Alpha Market LLP",
              not_before: datetime | None = None, not_after: datetime | None = None,
              digital_signature: bool = True) -> TextSigner:
        key = _new_key(self.kind)
        leaf = _cert(_name(cn, org), self.root.subject, key.public_key(), self.key, ca=False,
                     not_before=not_before or NOW - timedelta(days=1), not_after=not_after or NOW + timedelta(days=365),
                     digital_signature=digital_signature)
        return TextSigner(chain=[leaf, self.root], key=key, algorithm=self.kind)


def make_ca(kind: str = "ES256", cn: str = "Test Root CA") -> Ca:
    key = _new_key(kind)
    name = _name(cn, "Test CA")
    root = _cert(name, name, key.public_key(), key, ca=True, not_before=NOW - timedelta(days=30),
                 not_after=NOW + timedelta(days=3650))
    return Ca(root, key, kind)


def self_signed_signer() -> TextSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Self-made labeler", "Nobody LLP")
    cert = _cert(name, name, key.public_key(), key, ca=False, not_before=NOW - timedelta(days=1),
                 not_after=NOW + timedelta(days=30))
    return TextSigner(chain=[cert], key=key, algorithm="ES256")


@pytest.fixture(scope="module")
def ca() -> Ca:
    return make_ca("ES256")


@pytest.fixture(scope="module")
def signer(ca: Ca) -> TextSigner:
    return ca.issue()


class Directory:
    """What the platform knows: signer fingerprint → chain (the lead's service looks these up in its database)."""

    def __init__(self, *signers: TextSigner) -> None:
        self.chains = {s.fingerprint: list(s.chain) for s in signers}
        self.asked: list[str] = []

    def __call__(self, fingerprint: str) -> list[x509.Certificate] | None:
        self.asked.append(fingerprint)
        return self.chains.get(fingerprint)


def _verify(text: str, ca: Ca, *signers: TextSigner, anchors=None):  # type: ignore[no-untyped-def]
    return verify_text(text, certificate_for=Directory(*signers), anchors=[ca.root] if anchors is None else anchors)


# -- the happy path ----------------------------------------------------------------------------------------------


def test_a_labeled_answer_has_the_disclosure_on_top_and_the_marker_at_the_end(signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    lines = labeled.split("\n")
    assert lines[0] == "⚠ " + " / ".join(WARNING_TEXTS[lang] for lang in ("kk", "ru", "en"))
    assert lines[1] == "" and ANSWER.rstrip("\n") in labeled
    assert lines[-2].startswith("[AI-LABEL qorgau/1 ") and lines[-2].endswith("]") and lines[-1] == ""
    payload_b64 = lines[-2].split()[2].split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert payload["v"] == 1 and payload["alg"] == "ES256" and payload["kid"] == signer.fingerprint
    assert payload["claims"] == CLAIMS and payload["t"].endswith("Z") and "x5c" not in payload
    assert payload["lang"] == ["kk", "ru", "en"]


@pytest.mark.parametrize("kind", ["ES256", "ES384", "PS256", "Ed25519"])
def test_a_labeled_answer_verifies_as_trusted_under_its_ca(kind: str) -> None:
    ca = make_ca(kind)
    signer = ca.issue()
    directory = Directory(signer)
    result = verify_text(label_text(ANSWER, signer=signer, claims=CLAIMS), certificate_for=directory,
                         anchors=[ca.root])
    assert result.state == "trusted", result.failures
    assert result.failures == () and result.algorithm == kind
    assert result.claims == CLAIMS and result.fingerprint == signer.fingerprint
    assert (result.signer_common_name, result.signer_organization) == ("AI content labels, BIN 123456789012",
                                                                       "Alpha Market LLP")
    assert result.disclosure_present is True and result.chain_source == "lookup"
    assert result.anchor_fingerprint == cert_fingerprint(ca.root) and directory.asked == [signer.fingerprint]
    assert result.to_dict()["state"] == "trusted" and json.dumps(result.to_dict())


def test_chosen_languages_and_overridden_words_make_the_disclosure_line(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS, languages=("ru",),
                         texts={"ru": "Текст создан нейросетью"})
    assert labeled.startswith("⚠ Текст создан нейросетью\n\n")
    result = _verify(labeled, ca, signer)
    assert result.state == "trusted" and result.languages == ("ru",)


def test_the_chain_in_the_marker_verifies_without_a_lookup(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS, include_chain=True)

    def nobody_knows(fingerprint: str) -> None:
        raise AssertionError("no lookup needed when the label carries its chain")

    result = verify_text(labeled, certificate_for=nobody_knows, anchors=[ca.root])
    assert result.state == "trusted" and result.chain_source == "x5c"


# -- what survives copy and paste --------------------------------------------------------------------------------


def test_windows_line_endings_and_trailing_spaces_still_verify(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    crlf = labeled.replace("\n", "\r\n")
    spaced = "\n".join(line + "  \t" for line in labeled.split("\n"))
    old_mac = labeled.replace("\n", "\r")
    nbsp = labeled.replace("чат-бот.\n", "чат-бот.\u00a0\n")
    for variant in (crlf, spaced, old_mac, nbsp, "\n\n" + labeled + "\n\n\n"):
        assert _verify(variant, ca, signer).state == "trusted"


def test_decomposed_kazakh_and_russian_letters_verify_after_nfc(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    decomposed = unicodedata.normalize("NFD", labeled)
    assert decomposed != labeled  # й, ё and the disclosure's й carry combining marks in NFD
    assert _verify(decomposed, ca, signer).state == "trusted"


def test_an_nfd_input_text_is_labeled_and_verifies_in_either_form(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(unicodedata.normalize("NFD", ANSWER), signer=signer, claims=CLAIMS)
    assert _verify(labeled, ca, signer).state == "trusted"
    assert _verify(unicodedata.normalize("NFC", labeled), ca, signer).state == "trusted"


def test_a_labeled_block_pasted_into_a_bigger_page_still_verifies(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    page = ("<p>Forum thread, page 2</p>\nUser Aigerim wrote:\n" + labeled.replace("\n", "\r\n")
            + "\r\nReply from Marat: thanks!\n[signature: Marat]\n")
    result = _verify(page, ca, signer)
    assert result.state == "trusted" and result.disclosure_present is True
    label = read_text_label(page)
    assert label is not None and page[label.marker_span[0]:label.marker_span[1]].startswith("[AI-LABEL qorgau/1")
    assert label.body_start == page.index("⚠")


def test_indented_disclosure_and_a_byte_order_mark_are_outside_the_body(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    assert _verify("\ufeff" + labeled, ca, signer).state == "trusted"
    assert _verify("    " + labeled, ca, signer).state == "trusted"


def test_a_marker_wrapped_by_a_mail_client_still_verifies(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    start = labeled.index("[AI-LABEL")
    marker = labeled[start:].rstrip("\n")
    wrapped = " \r\n".join(marker[i:i + 76] for i in range(0, len(marker), 76))
    assert _verify(labeled[:start] + wrapped + "\r\n", ca, signer).state == "trusted"


def test_two_labeled_answers_on_one_page_check_the_last(ca: Ca, signer: TextSigner) -> None:
    first = label_text("Бірінші жауап.", signer=signer, claims=CLAIMS)
    second = label_text("Второй ответ.", signer=signer, claims={**CLAIMS, "record_id": "KZ-LBL-2026-000002"})
    result = _verify(first + "\n---\n" + second, ca, signer)
    assert result.state == "trusted" and result.claims and result.claims["record_id"] == "KZ-LBL-2026-000002"


def test_a_text_quoting_the_warning_itself_still_finds_its_own_disclosure_line(ca: Ca, signer: TextSigner) -> None:
    quoting = "Вот как выглядит пометка:\n" + disclosure_line() + "\nКонец цитаты."
    labeled = label_text(quoting, signer=signer, claims=CLAIMS)
    assert _verify("Prefix line\n" + labeled, ca, signer).state == "trusted"


# -- what does not survive ---------------------------------------------------------------------------------------


def test_one_changed_word_makes_the_label_invalid(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    for changed in (labeled.replace("чат-бот.", "человек."), labeled.replace("14.9 %", "4.9 %"),
                    labeled.replace("әріптері", "әріптер"), labeled.replace("Ёлка и йод", "Елка и йод")):
        result = _verify(changed, ca, signer)
        assert result.state == "invalid" and result.codes == ["text.hash.mismatch"]
        assert result.disclosure_present is True and result.claims == CLAIMS


def test_a_changed_signature_byte_makes_the_label_invalid(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    dot = labeled.rindex(".")
    flipped = "B" if labeled[dot + 5] != "B" else "C"
    tampered = labeled[:dot + 5] + flipped + labeled[dot + 6:]
    result = _verify(tampered, ca, signer)
    assert result.state == "invalid" and result.codes == ["text.signature.invalid"]


def test_changed_claims_in_the_payload_break_the_signature(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    label = read_text_label(labeled)
    assert label is not None and label.payload is not None
    forged = dict(label.payload, claims={**CLAIMS, "operator_bin": "999999999999"})
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    result = _verify(labeled.replace(label.payload_b64, forged_b64), ca, signer)
    assert result.state == "invalid" and result.codes == ["text.signature.invalid"]


def test_removing_the_marker_leaves_an_unlabeled_text(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    stripped = labeled[:labeled.index("[AI-LABEL")]
    result = _verify(stripped, ca, signer)
    assert result.state == "unlabeled" and result.failures == () and result.claims is None
    assert read_text_label(stripped) is None and _verify(ANSWER, ca, signer).state == "unlabeled"


def test_removing_the_disclosure_line_makes_the_label_invalid(ca: Ca, signer: TextSigner) -> None:
    """The disclosure line is part of the signed body: dropping the warning breaks the marking (L-AI-LABEL)."""
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    without = labeled.split("\n", 1)[1]
    result = _verify(without, ca, signer)
    assert result.state == "invalid" and result.codes == ["text.hash.mismatch", "text.disclosure.missing"]
    assert result.disclosure_present is False
    reworded = labeled.replace(WARNING_TEXTS["en"], "Written by a human", 1)
    assert _verify(reworded, ca, signer).codes == ["text.hash.mismatch", "text.disclosure.missing"]


@pytest.mark.parametrize("marker", [
    "[AI-LABEL qorgau/1 not-base64!.x]",
    "[AI-LABEL qorgau/1 e30.AAAA]",                        # "{}": missing fields
    "[AI-LABEL qorgau/1 YWJj.AAAA]",                       # "abc": not JSON
    "[AI-LABEL qorgau/1 ",                                 # cut off
])
def test_a_malformed_marker_is_invalid_not_an_exception(ca: Ca, signer: TextSigner, marker: str) -> None:
    text = disclosure_line() + "\n\n" + ANSWER + "\n" + marker
    label = read_text_label(text)
    assert label is not None and label.malformed and label.problem == "text.marker.malformed"
    result = _verify(text, ca, signer)
    assert result.state == "invalid" and result.codes == ["text.marker.malformed"]


def test_a_future_format_version_is_refused_by_name(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS).replace("qorgau/1", "qorgau/2")
    result = _verify(labeled, ca, signer)
    assert result.state == "invalid" and result.codes == ["text.marker.version"]


# -- who signed --------------------------------------------------------------------------------------------------


def test_an_unknown_signer_without_a_chain_is_invalid(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    result = _verify(labeled, ca)  # the directory knows nobody
    assert result.state == "invalid" and result.codes == ["text.certificate.unknown"]
    assert result.fingerprint == signer.fingerprint


def test_a_lookup_returning_another_certificate_is_invalid(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    other = ca.issue(cn="Someone else")
    result = verify_text(labeled, certificate_for=lambda fp: list(other.chain), anchors=[ca.root])
    assert result.state == "invalid" and result.codes == ["text.certificate.mismatch"]


def test_a_signer_under_another_ca_is_untrusted_until_its_root_is_an_anchor(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    stranger = make_ca("ES256", cn="Some Other Root")
    result = _verify(labeled, ca, signer, anchors=[stranger.root])
    assert result.state == "untrusted" and result.codes == ["signingCredential.untrusted"]
    assert result.claims == CLAIMS and result.disclosure_present is True
    assert _verify(labeled, ca, signer, anchors=[]).state == "untrusted"
    assert _verify(labeled, ca, signer, anchors=[stranger.root, ca.root]).state == "trusted"


def test_a_self_signed_labeler_is_untrusted(ca: Ca) -> None:
    selfish = self_signed_signer()
    labeled = label_text(ANSWER, signer=selfish, claims=CLAIMS, include_chain=True)
    result = verify_text(labeled, certificate_for=Directory(), anchors=[ca.root])
    assert result.state == "untrusted" and result.codes == ["signingCredential.untrusted"]
    assert verify_text(labeled, certificate_for=Directory(), anchors=[]).state == "untrusted"


def test_a_forged_chain_naming_the_trusted_root_is_untrusted(ca: Ca) -> None:
    impostor = make_ca("ES256", cn="Test Root CA")  # same name as the real root, different key
    forged = impostor.issue()
    labeled = label_text(ANSWER, signer=forged, claims=CLAIMS, include_chain=True)
    result = verify_text(labeled, certificate_for=Directory(), anchors=[ca.root])
    assert result.state == "untrusted"


def test_a_certificate_expired_when_signing_makes_the_label_invalid(ca: Ca) -> None:
    expired = ca.issue(not_before=NOW - timedelta(days=20), not_after=NOW - timedelta(days=1))
    labeled = label_text(ANSWER, signer=expired, claims=CLAIMS)
    result = _verify(labeled, ca, expired)
    assert result.state == "invalid" and result.codes == ["signingCredential.expired"]


def test_a_label_signed_while_the_certificate_was_valid_stays_trusted_after_it_expires(ca: Ca) -> None:
    short = ca.issue(not_before=NOW - timedelta(days=20), not_after=NOW - timedelta(days=1))
    labeled = label_text(ANSWER, signer=short, claims=CLAIMS, now=NOW - timedelta(days=10))
    result = _verify(labeled, ca, short)
    assert result.state == "trusted" and result.signed_at and result.signed_at.startswith(
        (NOW - timedelta(days=10)).strftime("%Y-%m-%d"))


def test_a_label_dated_in_the_future_is_invalid(ca: Ca, signer: TextSigner) -> None:
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS, now=NOW + timedelta(days=2))
    assert _verify(labeled, ca, signer).codes == ["text.time.invalid"]


def test_a_certificate_without_digital_signature_usage_may_not_label(ca: Ca) -> None:
    weak = ca.issue(digital_signature=False)
    result = _verify(label_text(ANSWER, signer=weak, claims=CLAIMS), ca, weak)
    assert result.state == "invalid" and result.codes == ["signingCredential.invalid"]


# -- refusals and privacy ----------------------------------------------------------------------------------------


def test_bad_inputs_are_refused_naming_the_field(signer: TextSigner, ca: Ca) -> None:
    cases = [
        (dict(text="  \n\n"), "text"),
        (dict(languages=()), "languages"),
        (dict(languages=("de",)), "languages"),
        (dict(texts={"en": ""}), "texts.en"),
        (dict(texts={"kk": "бір\nекі"}), "texts.kk"),
        (dict(claims={"when": datetime.now()}), "claims"),
        (dict(signer=TextSigner(chain=signer.chain, key=signer.key, algorithm="ES384")), "signer"),
        (dict(signer=TextSigner(chain=signer.chain, key=ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")),
         "signer"),
    ]
    for overrides, field in cases:
        kwargs = {"text": ANSWER, "signer": signer, "claims": CLAIMS, **overrides}
        with pytest.raises(InvalidInput) as error:
            label_text(**kwargs)  # type: ignore[arg-type]
        assert error.value.field == field
        assert ANSWER[:20] not in str(error.value)


def test_reprs_show_neither_the_key_nor_the_text(ca: Ca, signer: TextSigner) -> None:
    assert "key" not in repr(signer).replace("TextSigner", "")
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    label = read_text_label(labeled)
    result = _verify(labeled.replace("чат-бот.", "человек."), ca, signer)
    for shown in (repr(label), repr(result), json.dumps(result.to_dict(), ensure_ascii=False)):
        assert "чат-бот" not in shown and "человек" not in shown and "Сәлеметсіз" not in shown


def test_canonical_form_keeps_words_and_indentation() -> None:
    assert canonical("\r\n  a  \r\n\r\nb\t\n\n") == "  a\n\nb"
    assert canonical("e\u0301") == "\u00e9"


def test_an_operator_certificate_from_the_local_test_ca_signs_text_labels() -> None:
    """The same credential the C2PA labels use (qorgau.provenance.ca) signs and verifies text labels."""
    from qorgau.provenance import ca as local_ca

    root = local_ca.new_root()
    operator = local_ca.issue_operator(root, operator_name="Alpha Market LLP", bin="123456789012")
    signer = TextSigner(chain=list(operator.chain), key=operator.key, algorithm=operator.algorithm)
    labeled = label_text(ANSWER, signer=signer, claims=CLAIMS)
    result = verify_text(labeled, certificate_for={operator.fingerprint: list(operator.chain)}.get,
                         anchors=[root.leaf])
    assert result.state == "trusted" and result.fingerprint == operator.fingerprint
    assert result.signer_organization == "Alpha Market LLP"
