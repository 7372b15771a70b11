"""RFC 9497 oblivious pseudorandom functions over ristretto255 (ciphersuite ``ristretto255-SHA512``).

Why an OPRF: an IIN has about 9·10⁸ possible values, so an unkeyed hash of it — or any anonymous yes/no
lookup — enumerates the whole population in minutes (L-PD-LEAK-REGISTER, issue 8). The register therefore
stores only ``token = F(k, "type:normalized value")`` where ``F`` is the RFC 9497 PRF and ``k`` is held by
the key provider, and a bank or telco that screens its customers learns ``F(k, x)`` for its own ``x``
without revealing ``x`` to the register and without learning ``k``:

    client                                   register (holds k)
    blinded = client.blind(x)          ──►   evaluated = server.blind_evaluate(blinded.blinded_element)
    token   = client.finalize(blinded, evaluated)   ◄──
    token == server.evaluate(x)   (the register computes the same value directly at ingest)

Three modes, each with its own domain separation (so the same key gives *different* outputs per mode):

- ``Mode.OPRF`` (0x00) — :class:`OprfServer` / :class:`OprfClient`.
- ``Mode.VOPRF`` (0x01) — :class:`VoprfServer` / :class:`VoprfClient`: every evaluation (or batch of them)
  carries a DLEQ proof that it used the key whose public half the register has committed to, so a
  screening bank can check that it is not being served a per-customer key (RFC 9497 §2.2, §3.3.2).
- ``Mode.POPRF`` (0x02) — :class:`PoprfServer` / :class:`PoprfClient`: VOPRF plus a public ``info`` string
  bound into the output (RFC 9497 §3.3.3).

The group is ristretto255 from libsodium (through ``rbcl``); hash-to-group is RFC 9380's
``ristretto255_XMD:SHA-512_R255MAP_RO_`` (``expand_message_xmd`` with SHA-512 to 64 bytes, then libsodium's
``crypto_core_ristretto255_from_hash``, which is RFC 9496's one-way map). The RFC's Appendix A.1 test
vectors for all three modes run in ``tests/leaks/test_oprf.py``.

Nothing here prints a key or an input: servers' and blinded inputs' ``repr`` hide them, and errors name
the field, never the value (an input is ``"iin:…"``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NoReturn, Self

import rbcl

from qorgau.core.errors import IntegrityFailure, InvalidInput

SUITE = "ristretto255-SHA512"
NE = 32  # bytes of a serialized element
NS = 32  # bytes of a serialized scalar
NH = 64  # bytes of the hash output (SHA-512), the length of an OPRF output
PROOF_BYTES = 2 * NS
MAX_INPUT_BYTES = 0xFFFF  # I2OSP(len(input), 2)
MAX_INFO_BYTES = 0xFFFF
MAX_BATCH = 0x10000  # ComputeComposites encodes the index with I2OSP(i, 2)

_IDENTITY = bytes(NE)
_ZERO_SCALAR = bytes(NS)


class Mode(IntEnum):
    OPRF = 0x00
    VOPRF = 0x01
    POPRF = 0x02


class ProofInvalid(IntegrityFailure):
    """The server's DLEQ proof does not verify: its answer was not computed with the committed key."""

    code = "oprf_proof_invalid"


# --- encoding and hashing (RFC 9497 §4.1, RFC 9380 §5.3.1) ------------------------------------------


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _lp(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data`` — the length-prefixed framing every RFC 9497 transcript uses."""
    return len(data).to_bytes(2, "big") + data


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 ``expand_message_xmd`` with SHA-512 (b_in_bytes 64, s_in_bytes 128)."""
    if len(dst) > 255:
        raise InvalidInput("the domain separation tag must be at most 255 bytes", field="dst")
    ell = -(-length // 64)
    if ell > 255 or length > 0xFFFF or length <= 0:
        raise InvalidInput("expand_message_xmd cannot produce that many bytes", field="length")
    dst_prime = dst + _i2osp(len(dst), 1)
    b_0 = hashlib.sha512(bytes(128) + msg + _i2osp(length, 2) + b"\x00" + dst_prime).digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    out = [b_i]
    for i in range(2, ell + 1):
        b_i = hashlib.sha512(bytes(x ^ y for x, y in zip(b_0, b_i)) + _i2osp(i, 1) + dst_prime).digest()
        out.append(b_i)
    return b"".join(out)[:length]


def context_string(mode: Mode) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || identifier`` (RFC 9497 §3.1)."""
    return b"OPRFV1-" + _i2osp(int(mode), 1) + b"-" + SUITE.encode("ascii")


@dataclass(frozen=True)
class _Context:
    mode: Mode
    group_dst: bytes
    scalar_dst: bytes
    derive_dst: bytes
    seed_dst: bytes


_CONTEXTS = {
    mode: _Context(
        mode=mode,
        group_dst=b"HashToGroup-" + context_string(mode),
        scalar_dst=b"HashToScalar-" + context_string(mode),
        derive_dst=b"DeriveKeyPair" + context_string(mode),
        seed_dst=b"Seed-" + context_string(mode),
    )
    for mode in Mode
}


def hash_to_group(msg: bytes, mode: Mode) -> bytes:
    """RFC 9497 §4.1 HashToGroup: ``ristretto255_XMD:SHA-512_R255MAP_RO_`` with DST ``"HashToGroup-" || contextString``."""
    uniform = expand_message_xmd(msg, _CONTEXTS[Mode(mode)].group_dst, 64)
    return rbcl.crypto_core_ristretto255_from_hash(uniform)


def hash_to_scalar(msg: bytes, mode: Mode, dst: bytes | None = None) -> bytes:
    """RFC 9497 §4.1 HashToScalar: ``expand_message_xmd`` to 64 bytes, read little-endian, reduced mod L."""
    uniform = expand_message_xmd(msg, _CONTEXTS[Mode(mode)].scalar_dst if dst is None else dst, 64)
    return rbcl.crypto_core_ristretto255_scalar_reduce(uniform)


# --- validation of everything that crosses a trust boundary ------------------------------------------


def _as_bytes(value: object, field: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidInput(f"{field} must be bytes", field=field)


def _is_canonical_scalar(data: bytes) -> bool:
    return len(data) == NS and rbcl.crypto_core_ristretto255_scalar_reduce(data + bytes(32)) == data


def _scalar(value: object, field: str, *, nonzero: bool = True) -> bytes:
    """DeserializeScalar (RFC 9497 §4.1): 32 bytes, little-endian, strictly below the group order."""
    data = _as_bytes(value, field)
    if len(data) != NS:
        raise InvalidInput(f"{field} must be {NS} bytes", field=field)
    if not _is_canonical_scalar(data):
        raise InvalidInput(f"{field} is not a canonical ristretto255 scalar", field=field)
    if nonzero and data == _ZERO_SCALAR:
        raise InvalidInput(f"{field} must not be zero", field=field)
    return data


def _element(value: object, field: str) -> bytes:
    """DeserializeElement (RFC 9497 §4.1): a canonical ristretto255 encoding, and not the identity."""
    data = _as_bytes(value, field)
    if len(data) != NE:
        raise InvalidInput(f"{field} must be {NE} bytes", field=field)
    if data == _IDENTITY or not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise InvalidInput(f"{field} is not a valid ristretto255 element", field=field)
    return data


def _elements(values: object, field: str) -> list[bytes]:
    if isinstance(values, (bytes, bytearray, memoryview, str)) or not isinstance(values, Iterable):
        raise InvalidInput(f"{field} must be a list of elements", field=field)
    items = list(values)
    if not items:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"{field} holds more than {MAX_BATCH} elements", field=field)
    return [_element(item, field) for item in items]


def _message(value: object, field: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    data = _as_bytes(value, field)
    if len(data) > limit:
        raise InvalidInput(f"{field} must be at most {limit} bytes", field=field)
    return data


def _proof(value: object) -> tuple[bytes, bytes]:
    data = _as_bytes(value, "proof")
    if len(data) != PROOF_BYTES:
        raise InvalidInput(f"proof must be {PROOF_BYTES} bytes", field="proof")
    c, s = data[:NS], data[NS:]
    if not (_is_canonical_scalar(c) and _is_canonical_scalar(s)):
        raise InvalidInput("proof holds a non-canonical scalar", field="proof")
    return c, s


def _input_element(data: bytes, mode: Mode) -> bytes:
    element = hash_to_group(data, mode)
    if element == _IDENTITY:  # RFC 9497 §3.3.1: InvalidInputError; probability ~2^-252
        raise InvalidInput("input maps to the identity element", field="input")
    return element


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar (libsodium rejects zero and non-canonical draws)."""
    return rbcl.crypto_core_ristretto255_scalar_random()


def generate_secret_key() -> bytes:
    """A fresh random OPRF secret key (RFC 9497 §3.2 GenerateKeyPair); the key provider stores it."""
    return random_scalar()


def derive_key_pair(seed: bytes, info: bytes, mode: Mode) -> tuple[bytes, bytes]:
    """RFC 9497 §3.2.1 DeriveKeyPair: ``(skS, pkS)`` from a 32-byte seed and a public info string."""
    seed = _as_bytes(seed, "seed")
    if len(seed) != NS:
        raise InvalidInput(f"seed must be {NS} bytes", field="seed")
    info = _message(info, "info", MAX_INFO_BYTES)
    derive_input = seed + _lp(info)
    dst = _CONTEXTS[Mode(mode)].derive_dst
    for counter in range(256):
        sk = hash_to_scalar(derive_input + _i2osp(counter, 1), mode, dst)
        if sk != _ZERO_SCALAR:
            return sk, rbcl.crypto_scalarmult_ristretto255_base(sk)
    raise InvalidInput("no key can be derived from this seed and info", field="seed")  # DeriveKeyPairError


# --- DLEQ proofs (RFC 9497 §2.2) ----------------------------------------------------------------------


def _mul(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; the identity (32 zero bytes) when the product is the identity."""
    return rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(scalar, element)


def _mul_base(scalar: bytes) -> bytes:
    return rbcl.crypto_scalarmult_ristretto255_base_allow_scalar_zero(scalar)


def _add(p: bytes, q: bytes) -> bytes:
    return rbcl.crypto_core_ristretto255_add(p, q)


def _composite_weights(ctx: _Context, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes]) -> list[bytes]:
    seed = hashlib.sha512(_lp(b) + _lp(ctx.seed_dst)).digest()
    prefix = _lp(seed)
    return [
        hash_to_scalar(prefix + _i2osp(i, 2) + _lp(c) + _lp(d) + b"Composite", ctx.mode)
        for i, (c, d) in enumerate(zip(cs, ds))
    ]


def _weighted_sum(weights: Sequence[bytes], elements: Sequence[bytes]) -> bytes:
    total = _IDENTITY
    for weight, element in zip(weights, elements):
        total = _add(total, _mul(weight, element))
    return total


def _challenge(ctx: _Context, b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = _lp(b) + _lp(m) + _lp(z) + _lp(t2) + _lp(t3) + b"Challenge"
    return hash_to_scalar(transcript, ctx.mode)


def generate_proof(
    k: bytes, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes], mode: Mode, *, r: bytes | None = None
) -> bytes:
    """GenerateProof(k, G, B = k·G, C, D = k·C) with ComputeCompositesFast; returns ``c || s``.

    ``r`` is the proof's random scalar; pass it only to reproduce the RFC's test vectors.
    """
    ctx = _CONTEXTS[Mode(mode)]
    weights = _composite_weights(ctx, b, cs, ds)
    m = _weighted_sum(weights, cs)
    z = _mul(k, m)
    r = random_scalar() if r is None else _scalar(r, "proof_scalar")
    t2 = _mul_base(r)
    t3 = _mul(r, m)
    c = _challenge(ctx, b, m, z, t2, t3)
    s = rbcl.crypto_core_ristretto255_scalar_sub(r, rbcl.crypto_core_ristretto255_scalar_mul(c, k))
    return c + s


def verify_proof(b: bytes, cs: Sequence[bytes], ds: Sequence[bytes], proof: bytes, mode: Mode) -> bool:
    """VerifyProof(G, B, C, D, proof): True when ``D = k·C`` for the ``k`` with ``B = k·G``, for every pair.

    ``b``, ``cs`` and ``ds`` must be deserialized elements (the clients check them); the proof is checked here.
    """
    ctx = _CONTEXTS[Mode(mode)]
    c, s = _proof(proof)
    if not cs or len(cs) != len(ds):
        return False
    weights = _composite_weights(ctx, b, cs, ds)
    m = _weighted_sum(weights, cs)
    z = _weighted_sum(weights, ds)
    t2 = _add(_mul_base(s), _mul(c, b))
    t3 = _add(_mul(s, m), _mul(c, z))
    return hmac.compare_digest(_challenge(ctx, b, m, z, t2, t3), c)


# --- the client's state between Blind and Finalize ---------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class BlindedInput:
    """What a client keeps between Blind and Finalize; only ``blinded_element`` goes to the server.

    ``input`` is personal data (``"iin:…"``) and ``blind`` unmasks the answer, so neither is printed.
    """

    input: bytes
    blind: bytes
    blinded_element: bytes
    mode: Mode
    info: bytes | None = None  # POPRF only
    tweaked_key: bytes | None = None  # POPRF only

    def __repr__(self) -> str:
        return "BlindedInput(<hidden>)"


def _invert_all(scalars: Sequence[bytes]) -> list[bytes]:
    """Inverses of non-zero scalars with one libsodium inversion (Montgomery's trick).

    An inversion costs as much as a scalar multiplication here and a scalar product about 1 µs, so a batch
    of m blinds is unblinded with 1 inversion and 3(m-1) products instead of m inversions.
    """
    mul = rbcl.crypto_core_ristretto255_scalar_mul
    prefix = [scalars[0]]
    for scalar in scalars[1:]:
        prefix.append(mul(prefix[-1], scalar))
    inverse = rbcl.crypto_core_ristretto255_scalar_invert(prefix[-1])
    out = [b""] * len(scalars)
    for i in range(len(scalars) - 1, 0, -1):
        out[i] = mul(inverse, prefix[i - 1])
        inverse = mul(inverse, scalars[i])
    out[0] = inverse
    return out


def _finalize_hash(data: bytes, info: bytes | None, element: bytes) -> bytes:
    framed_info = b"" if info is None else _lp(info)
    return hashlib.sha512(_lp(data) + framed_info + _lp(element) + b"Finalize").digest()


def _blinded_inputs(values: object, mode: Mode) -> list[BlindedInput]:
    if not isinstance(values, Iterable):
        raise InvalidInput("blinded_inputs must be a list", field="blinded_inputs")
    items = list(values)
    if not items:
        raise InvalidInput("blinded_inputs must not be empty", field="blinded_inputs")
    for item in items:
        if not isinstance(item, BlindedInput):
            raise InvalidInput("blinded_inputs must come from blind()", field="blinded_inputs")
        if item.mode is not mode:
            raise InvalidInput("blinded_inputs come from a client of another mode", field="blinded_inputs")
    return items


class _Client:
    mode: Mode = Mode.OPRF

    def _blind(self, data: object, blind_scalar: bytes | None, **extra: bytes) -> BlindedInput:
        data = _message(data, "input")
        blind = random_scalar() if blind_scalar is None else _scalar(blind_scalar, "blind_scalar")
        element = _input_element(data, self.mode)
        blinded_element = rbcl.crypto_scalarmult_ristretto255(blind, element)
        return BlindedInput(data, blind, blinded_element, self.mode, **extra)

    def _unblind_all(self, blinded: Sequence[BlindedInput], evaluated: Sequence[bytes]) -> list[bytes]:
        inverses = _invert_all([b.blind for b in blinded])
        return [
            _finalize_hash(b.input, b.info, rbcl.crypto_scalarmult_ristretto255(inverse, e))
            for b, inverse, e in zip(blinded, inverses, evaluated)
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode.name})"


class OprfClient(_Client):
    """RFC 9497 §3.3.1 client, mode OPRF: Blind, then Finalize with the server's evaluated element."""

    mode = Mode.OPRF

    def blind(self, input: bytes, *, blind_scalar: bytes | None = None) -> BlindedInput:
        """Blind one input. ``blind_scalar`` fixes the blind for the RFC's test vectors; leave it None."""
        return self._blind(input, blind_scalar)

    def blind_batch(self, inputs: Iterable[bytes]) -> list[BlindedInput]:
        return [self.blind(item) for item in inputs]

    def finalize(self, blinded: BlindedInput, evaluated_element: bytes) -> bytes:
        items = _blinded_inputs([blinded], self.mode)
        return self._unblind_all(items, [_element(evaluated_element, "evaluated_element")])[0]

    def finalize_batch(self, blinded: Sequence[BlindedInput], evaluated_elements: Sequence[bytes]) -> list[bytes]:
        items = _blinded_inputs(blinded, self.mode)
        evaluated = _elements(evaluated_elements, "evaluated_elements")
        if len(evaluated) != len(items):
            raise InvalidInput("evaluated_elements must match blinded_inputs one to one", field="evaluated_elements")
        return self._unblind_all(items, evaluated)


class VoprfClient(_Client):
    """RFC 9497 §3.3.2 client, mode VOPRF: Finalize first verifies the server's proof against ``public_key``."""

    mode = Mode.VOPRF

    def __init__(self, public_key: bytes) -> None:
        self.public_key = _element(public_key, "public_key")

    def blind(self, input: bytes, *, blind_scalar: bytes | None = None) -> BlindedInput:
        """Blind one input. ``blind_scalar`` fixes the blind for the RFC's test vectors; leave it None."""
        return self._blind(input, blind_scalar)

    def blind_batch(self, inputs: Iterable[bytes]) -> list[BlindedInput]:
        return [self.blind(item) for item in inputs]

    def finalize(self, blinded: BlindedInput, evaluated_element: bytes, proof: bytes) -> bytes:
        element = _element(evaluated_element, "evaluated_element")
        return self.finalize_batch([blinded], [element], proof)[0]

    def finalize_batch(
        self, blinded: Sequence[BlindedInput], evaluated_elements: Sequence[bytes], proof: bytes
    ) -> list[bytes]:
        """Verify one batched proof over all pairs (RFC 9497 §3.3.2), then unblind each; raises ProofInvalid."""
        items = _blinded_inputs(blinded, self.mode)
        evaluated = _elements(evaluated_elements, "evaluated_elements")
        if len(evaluated) != len(items):
            raise InvalidInput("evaluated_elements must match blinded_inputs one to one", field="evaluated_elements")
        if not verify_proof(self.public_key, [b.blinded_element for b in items], evaluated, proof, self.mode):
            raise ProofInvalid("the register's proof does not verify against its public key", field="proof")
        return self._unblind_all(items, evaluated)


class PoprfClient(_Client):
    """RFC 9497 §3.3.3 client, mode POPRF: like VOPRF, with a public ``info`` bound into the output."""

    mode = Mode.POPRF

    def __init__(self, public_key: bytes) -> None:
        self.public_key = _element(public_key, "public_key")

    def _tweaked_key(self, info: bytes) -> bytes:
        tweak = hash_to_scalar(b"Info" + _lp(info), self.mode)
        tweaked = _add(_mul_base(tweak), self.public_key)
        if tweaked == _IDENTITY:  # RFC 9497 §3.3.3: InvalidInputError
            raise InvalidInput("info yields the identity tweaked key for this public key", field="info")
        return tweaked

    def blind(self, input: bytes, info: bytes, *, blind_scalar: bytes | None = None) -> BlindedInput:
        """Blind one input under ``info``. ``blind_scalar`` is for the RFC's test vectors; leave it None."""
        info = _message(info, "info", MAX_INFO_BYTES)
        return self._blind(input, blind_scalar, info=info, tweaked_key=self._tweaked_key(info))

    def blind_batch(self, inputs: Iterable[bytes], info: bytes) -> list[BlindedInput]:
        info = _message(info, "info", MAX_INFO_BYTES)
        tweaked = self._tweaked_key(info)
        return [self._blind(item, None, info=info, tweaked_key=tweaked) for item in inputs]

    def finalize(self, blinded: BlindedInput, evaluated_element: bytes, proof: bytes) -> bytes:
        element = _element(evaluated_element, "evaluated_element")
        return self.finalize_batch([blinded], [element], proof)[0]

    def finalize_batch(
        self, blinded: Sequence[BlindedInput], evaluated_elements: Sequence[bytes], proof: bytes
    ) -> list[bytes]:
        items = _blinded_inputs(blinded, self.mode)
        if len({(b.info, b.tweaked_key) for b in items}) != 1:
            raise InvalidInput("blinded_inputs of one batch must share one info", field="blinded_inputs")
        evaluated = _elements(evaluated_elements, "evaluated_elements")
        if len(evaluated) != len(items):
            raise InvalidInput("evaluated_elements must match blinded_inputs one to one", field="evaluated_elements")
        tweaked = items[0].tweaked_key
        assert tweaked is not None
        if not verify_proof(tweaked, evaluated, [b.blinded_element for b in items], proof, self.mode):
            raise ProofInvalid("the register's proof does not verify against its public key", field="proof")
        return self._unblind_all(items, evaluated)


# --- servers ------------------------------------------------------------------------------------------


class _Server:
    mode: Mode = Mode.OPRF
    __slots__ = ("_sk", "_pk")

    def __init__(self, secret_key: bytes) -> None:
        self._sk = _scalar(secret_key, "secret_key")
        self._pk = rbcl.crypto_scalarmult_ristretto255_base(self._sk)

    @classmethod
    def derive(cls, seed: bytes, info: bytes) -> Self:
        """RFC 9497 §3.2.1 DeriveKeyPair for this server's mode (the same seed gives a different key per mode)."""
        secret, _ = derive_key_pair(seed, info, cls.mode)
        return cls(secret)

    @property
    def public_key(self) -> bytes:
        """``pkS = skS·G``, serialized; what the register publishes and clients verify proofs against."""
        return self._pk

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode.name})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds a secret key and is not serializable")


def _evaluate_all(secret: bytes, inputs: Iterable[bytes], mode: Mode) -> list[bytes]:
    """The ingest hot loop: HashToGroup, one scalar multiplication and SHA-512 per input, no extra calls."""
    if isinstance(inputs, (bytes, bytearray, memoryview, str)) or not isinstance(inputs, Iterable):
        raise InvalidInput("inputs must be a list of byte strings", field="inputs")
    group_dst = _CONTEXTS[mode].group_dst
    dst_prime = group_dst + _i2osp(len(group_dst), 1)
    zero_pad, sha512 = bytes(128), hashlib.sha512
    from_hash, mult = rbcl.crypto_core_ristretto255_from_hash, rbcl.crypto_scalarmult_ristretto255
    out = []
    for item in inputs:
        data = _message(item, "inputs")
        # expand_message_xmd(data, DST, 64) inlined: with SHA-512 and 64 bytes it is b_1 (RFC 9380 §5.3.1)
        b_0 = sha512(zero_pad + data + b"\x00\x40\x00" + dst_prime).digest()
        element = from_hash(sha512(b_0 + b"\x01" + dst_prime).digest())
        if element == _IDENTITY:
            raise InvalidInput("input maps to the identity element", field="inputs")
        out.append(sha512(_lp(data) + b"\x00\x20" + mult(secret, element) + b"Finalize").digest())
    return out


class OprfServer(_Server):
    """RFC 9497 §3.3.1 server, mode OPRF."""

    __slots__ = ()
    mode = Mode.OPRF

    def blind_evaluate(self, blinded_element: bytes) -> bytes:
        return rbcl.crypto_scalarmult_ristretto255(self._sk, _element(blinded_element, "blinded_element"))

    def blind_evaluate_batch(self, blinded_elements: Sequence[bytes]) -> list[bytes]:
        sk = self._sk
        return [rbcl.crypto_scalarmult_ristretto255(sk, e) for e in _elements(blinded_elements, "blinded_elements")]

    def evaluate(self, input: bytes) -> bytes:
        """RFC 9497 §3.3.1 Evaluate: the PRF output for an input the server holds in plaintext (ingest)."""
        data = _message(input, "input")
        issued = rbcl.crypto_scalarmult_ristretto255(self._sk, _input_element(data, self.mode))
        return _finalize_hash(data, None, issued)

    def evaluate_batch(self, inputs: Iterable[bytes]) -> list[bytes]:
        """Evaluate for many plaintext inputs (the ingest loop); the same outputs as ``evaluate`` one by one."""
        return _evaluate_all(self._sk, inputs, self.mode)


class VoprfServer(_Server):
    """RFC 9497 §3.3.2 server, mode VOPRF: evaluations come with a DLEQ proof against :attr:`public_key`."""

    __slots__ = ()
    mode = Mode.VOPRF

    def blind_evaluate(self, blinded_element: bytes, *, proof_scalar: bytes | None = None) -> tuple[bytes, bytes]:
        """Returns ``(evaluated_element, proof)``; ``proof_scalar`` is for the RFC's test vectors only."""
        element = _element(blinded_element, "blinded_element")
        evaluated, proof = self.blind_evaluate_batch([element], proof_scalar=proof_scalar)
        return evaluated[0], proof

    def blind_evaluate_batch(
        self, blinded_elements: Sequence[bytes], *, proof_scalar: bytes | None = None
    ) -> tuple[list[bytes], bytes]:
        """Evaluate a batch under one proof (RFC 9497 §3.3.2 batching): ``(evaluated_elements, proof)``."""
        blinded = _elements(blinded_elements, "blinded_elements")
        sk = self._sk
        evaluated = [rbcl.crypto_scalarmult_ristretto255(sk, e) for e in blinded]
        return evaluated, generate_proof(sk, self._pk, blinded, evaluated, self.mode, r=proof_scalar)

    def evaluate(self, input: bytes) -> bytes:
        """RFC 9497 §3.3.2 Evaluate: the PRF output for an input the server holds in plaintext (ingest)."""
        data = _message(input, "input")
        issued = rbcl.crypto_scalarmult_ristretto255(self._sk, _input_element(data, self.mode))
        return _finalize_hash(data, None, issued)

    def evaluate_batch(self, inputs: Iterable[bytes]) -> list[bytes]:
        """Evaluate for many plaintext inputs (the ingest loop); the same outputs as ``evaluate`` one by one."""
        return _evaluate_all(self._sk, inputs, self.mode)


class PoprfServer(_Server):
    """RFC 9497 §3.3.3 server, mode POPRF: the key is tweaked by a public ``info`` string."""

    __slots__ = ()
    mode = Mode.POPRF

    def _tweak(self, info: object) -> tuple[bytes, bytes, bytes]:
        info = _message(info, "info", MAX_INFO_BYTES)
        t = rbcl.crypto_core_ristretto255_scalar_add(self._sk, hash_to_scalar(b"Info" + _lp(info), self.mode))
        if t == _ZERO_SCALAR:  # RFC 9497 §3.3.3: InverseError
            raise InvalidInput("info cannot be used with this key", field="info")
        return info, t, rbcl.crypto_core_ristretto255_scalar_invert(t)

    def blind_evaluate(
        self, blinded_element: bytes, info: bytes, *, proof_scalar: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Returns ``(evaluated_element, proof)``; ``proof_scalar`` is for the RFC's test vectors only."""
        element = _element(blinded_element, "blinded_element")
        evaluated, proof = self.blind_evaluate_batch([element], info, proof_scalar=proof_scalar)
        return evaluated[0], proof

    def blind_evaluate_batch(
        self, blinded_elements: Sequence[bytes], info: bytes, *, proof_scalar: bytes | None = None
    ) -> tuple[list[bytes], bytes]:
        blinded = _elements(blinded_elements, "blinded_elements")
        _, t, t_inverse = self._tweak(info)
        evaluated = [rbcl.crypto_scalarmult_ristretto255(t_inverse, e) for e in blinded]
        tweaked_key = rbcl.crypto_scalarmult_ristretto255_base(t)
        return evaluated, generate_proof(t, tweaked_key, evaluated, blinded, self.mode, r=proof_scalar)

    def evaluate(self, input: bytes, info: bytes) -> bytes:
        data = _message(input, "input")
        info, _, t_inverse = self._tweak(info)
        issued = rbcl.crypto_scalarmult_ristretto255(t_inverse, _input_element(data, self.mode))
        return _finalize_hash(data, info, issued)


# --- the register's tokens ----------------------------------------------------------------------------


def token_input(kind: str, normalized_value: str) -> bytes:
    """The PRF input for one identifier: ``"{kind}:{normalized value}"`` in UTF-8 (e.g. ``iin:…``).

    ``kind`` must not contain ``":"`` so that no two (kind, value) pairs share an input.
    """
    if not isinstance(kind, str) or not kind or ":" in kind:
        raise InvalidInput("kind must be a non-empty name without ':'", field="kind")
    if not isinstance(normalized_value, str) or not normalized_value:
        raise InvalidInput("normalized_value must be a non-empty string", field="normalized_value")
    data = f"{kind}:{normalized_value}".encode("utf-8")
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInput(f"normalized_value must be at most {MAX_INPUT_BYTES} bytes", field="normalized_value")
    return data


def token(server: OprfServer | VoprfServer, kind: str, normalized_value: str) -> bytes:
    """The register's token for one identifier: ``server.evaluate(token_input(kind, normalized_value))``.

    It is exactly the RFC 9497 OPRF output (64 bytes), so a screening client of the same mode that runs
    ``blind(token_input(kind, value))`` → the server's ``blind_evaluate`` → ``finalize`` obtains the same
    token without the register ever seeing ``value``. Tokens depend on the mode: a register that serves
    VOPRF screening must compute its tokens with a :class:`VoprfServer`.
    """
    if not isinstance(server, (OprfServer, VoprfServer)):
        raise InvalidInput("server must be an OprfServer or a VoprfServer", field="server")
    return server.evaluate(token_input(kind, normalized_value))


def tokens(server: OprfServer | VoprfServer, kind: str, normalized_values: Iterable[str]) -> list[bytes]:
    """:func:`token` for many values of one kind (the ingest path), in order."""
    if not isinstance(server, (OprfServer, VoprfServer)):
        raise InvalidInput("server must be an OprfServer or a VoprfServer", field="server")
    if isinstance(normalized_values, str):
        raise InvalidInput("normalized_values must be a list of strings", field="normalized_values")
    return server.evaluate_batch([token_input(kind, value) for value in normalized_values])
