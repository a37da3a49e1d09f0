"""Detection rate and false-positive rate of secret redaction (core.redact).

    python bench/redaction.py [--samples 2000] [--seed 7]

Plants generated credentials of every recognised format (and password/PIN phrases) in sentences
of the ordinary ticket corpus (tests/fixtures/ticket_corpus.txt) and counts how many are masked
(detection rate); counts corpus sentences that redaction changes (false-positive rate); times
redaction of a 5 MB description. Prints ``name=value`` lines.
"""
from __future__ import annotations

import argparse
import base64
import random
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.redact import redact_text  # noqa: E402

ALNUM = string.ascii_letters + string.digits


def _r(rnd: random.Random, alphabet: str, n: int) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(n))


def _mixed(rnd: random.Random, alphabet: str, n: int) -> str:
    return rnd.choice(string.ascii_uppercase) + rnd.choice(string.ascii_lowercase) + \
        rnd.choice(string.digits) + _r(rnd, alphabet, n - 3)


def generators(rnd: random.Random) -> dict[str, tuple[str, str]]:
    """format -> (text planted, secret that must disappear)."""
    pw = _mixed(rnd, ALNUM + "!@#$%&*", 12)
    pin = _r(rnd, string.digits, rnd.choice([4, 6, 8]))
    aws_secret = _mixed(rnd, ALNUM + "/+", 40)
    basic = base64.b64encode(f"svc_{_r(rnd, 'abc', 4)}:{pw}".encode()).decode()
    jwt = f"eyJ{_r(rnd, ALNUM + '-_', 24)}.eyJ{_r(rnd, ALNUM + '-_', 40)}.{_r(rnd, ALNUM + '-_', 43)}"
    return {
        "aws_access_key_id": (k := "AKIA" + _r(rnd, string.ascii_uppercase + string.digits, 16), k),
        "aws_secret_key": (f"aws_secret_access_key = {aws_secret}", aws_secret),
        "jwt": (jwt, jwt),
        "github": (g := "ghp_" + _r(rnd, ALNUM, 36), g),
        "gitlab": (g := "glpat-" + _r(rnd, ALNUM + "_-", 20), g),
        "slack": (s := f"xoxb-{_r(rnd, string.digits, 12)}-{_r(rnd, string.digits, 13)}-{_r(rnd, ALNUM, 24)}", s),
        "azure_storage": (f"AccountName=x;AccountKey={(a := _r(rnd, ALNUM + '+/', 86))}==;", a),
        "azure_client_secret": (c := f"{_r(rnd, ALNUM, 3)}8Q~{_r(rnd, ALNUM + '_~.-', 34)}", c),
        "google_api_key": (g := "AIza" + _r(rnd, ALNUM + "_-", 35), g),
        "private_key": (f"-----BEGIN PRIVATE KEY-----\n{(b := _r(rnd, ALNUM + '+/', 64))}\n"
                        "-----END PRIVATE KEY-----", b),
        "bearer": (f"Authorization: Bearer {(t := _mixed(rnd, ALNUM + '._-', 40))}", t),
        "basic_auth": (f"Authorization: Basic {basic}", basic),
        "url_credentials": (f"https://admin:{pw}@portal.contoso.com/login", pw),
        "url_token": (f"https://api.contoso.com/cb?token={(t := _mixed(rnd, ALNUM, 32))}", t),
        "pin": (rnd.choice([f"PIN {pin}", f"pin: {pin}", f"the PIN is {pin}", f"PIN code {pin}"]), pin),
        "password": (rnd.choice([f"Root/Admin Password: {pw}", f"root password is {pw}",
                                 f"password={pw}", f"the password for the admin account is {pw}"]), pw),
    }


def _extra_lines(paths: list[Path]) -> list[str]:
    files = [f for p in paths for f in (sorted(p.glob("*.txt")) if p.is_dir() else [p])]
    return [line.strip() for f in files for line in f.read_text(errors="replace").splitlines()
            if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--extra-corpus", type=Path, action="append", default=[],
                        help="more ordinary text (files or folders of .txt), one sentence a line, "
                             "e.g. the project's seeds: written by others, so not tuned against")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    corpus = [line for line in (ROOT / "tests/fixtures/ticket_corpus.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    found = total = 0
    misses: dict[str, int] = {}
    for _ in range(args.samples):
        for name, (planted, secret) in generators(rnd).items():
            text = f"{rnd.choice(corpus)} {planted} {rnd.choice(corpus)}"
            total += 1
            if secret not in redact_text(text):
                found += 1
            else:
                misses[name] = misses.get(name, 0) + 1
    false_positives = sum(redact_text(line) != line for line in corpus)
    big = "\n".join(rnd.choice(corpus) for _ in range(60_000))[:5_000_000]
    started = time.perf_counter()
    redact_text(big)
    elapsed = time.perf_counter() - started
    print(f"secrets.planted={total}")
    print(f"secrets.detection_rate={found / total:.4f}")
    for name, count in sorted(misses.items()):
        print(f"secrets.missed.{name}={count}")
    print(f"secrets.corpus_sentences={len(corpus)}")
    print(f"secrets.false_positives={false_positives}")
    print(f"secrets.false_positive_rate={false_positives / len(corpus):.4f}")
    extra = _extra_lines(args.extra_corpus)
    if extra:
        changed = sum(redact_text(line) != line for line in extra)
        print(f"secrets.extra_corpus_lines={len(extra)}")
        print(f"secrets.extra_false_positive_rate={changed / len(extra):.4f}")
    print(f"secrets.redact_5mb_seconds={elapsed:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
