"""Reader for mechanism files in (a subset of) the KPP equation syntax.

Supported (KPP 2.x, Damian et al. 2002, Comput. Chem. Eng. 26, 1567; KPP manual):

* comments ``{ ... }`` (may span lines) and ``// ...`` to the end of the line;
* ``#DEFVAR`` / ``#DEFFIX``: one species per statement, ``NAME = N + 2O ;`` (atomic composition,
  used for atom-balance checks), ``NAME = IGNORE ;`` or just ``NAME ;``;
* ``#EQUATIONS``: ``<label> 2 HO2 = H2O2 : ARR2(2.2e-13, -600.0) ;``; stoichiometric
  coefficients (integers or decimals such as ``0.5 X``, optionally ``0.5*X``) on either side,
  ``hv`` is ignored, a statement may span several lines, an empty side is allowed (zero-order
  source, pure sink). Reactant coefficients are reaction orders and must be whole numbers;
* rate expressions: numbers (Fortran ``1.0D-12`` and ``_dp`` accepted), ``+ - * / **`` and
  parentheses, ``TEMP`` (K), ``PRESS`` (Pa), ``CAIR`` (air number density, molec cm-3; alias
  ``C_M``), ``EXP LOG LOG10 SQRT ABS MIN MAX``, and the KPP/WRF-Chem rate laws
  ``ARR(A0, B0[, C0]) = A0 exp(-B0/T) (T/300)**C0`` and ``ARR2(A0, B0) = A0 exp(-B0/T)`` (KPP sign
  convention: an activation temperature is *positive*, so HO2 + HO2 = 2.2e-13 exp(+600/T) is
  ``ARR2(2.2e-13, -600.0)``), and ``TROE(k0_300, n, kinf_300, m[, TEMP, CAIR])`` (WRF-Chem
  ``WRFUserRateLaws``: k0 = k0_300 (300/T)**n CAIR, kinf = kinf_300 (300/T)**m,
  k = k0/(1 + k0/kinf) 0.6**(1/(1 + log10(k0/kinf)**2)));
* photolysis frequencies: any identifier ``J_<name>`` (default 0, supplied by the caller).

Extensions of this project (not KPP):

* ``#UNITS <conc> <time>`` (required): ``<conc>`` one of ``ppm ppb ppt mol/mol molec/cm3 1``
  (``1`` = dimensionless, box use only), ``<time>`` one of ``s min h``. All rate constants in the
  file are in these units (e.g. ppm-1 min-1).
* ``#PARAMETERS``: ``NAME = default ;`` per-cell external inputs usable in rate expressions.
  Names starting ``J_`` or ``K_`` are first-order rates (per file time unit); the chemistry
  operator converts those it is given in s-1. Other parameters are dimensionless.
* ``#QSSA NAME [NAME ...]``: species held in quasi-steady state by the predictor-corrector
  solver (the Rosenbrock solvers integrate them like any other species).

Anything else (``#INLINE``, ``#INCLUDE``, ``#ATOMS``, ...) is rejected with the file and line.
Errors are :class:`MechanismSyntaxError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["MechanismSyntaxError", "Reaction", "Mechanism", "read_mechanism", "parse_mechanism",
           "CONC_UNITS", "TIME_UNITS"]

CONC_UNITS = ("ppm", "ppb", "ppt", "mol/mol", "molec/cm3", "1")
TIME_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
_FUNCS = {"EXP": "math.exp", "LOG": "math.log", "LOG10": "math.log10", "SQRT": "math.sqrt",
          "ABS": "abs", "MIN": "min", "MAX": "max"}
_RATE_LAWS = ("ARR", "ARR2", "TROE")
_ENV = {"TEMP": "temp", "PRESS": "press", "CAIR": "cair", "C_M": "cair"}
_IGNORED_DIRECTIVES = ("#LANGUAGE", "#INTEGRATOR", "#DRIVER", "#MODEL", "#DOUBLE", "#JACOBIAN",
                       "#HESSIAN", "#STOICMAT", "#FUNCTION", "#MEX", "#STOCHASTIC", "#DUMMYINDEX",
                       "#EQNTAGS", "#REORDER", "#LOOKATALL", "#MONITOR", "#CHECKALL")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TERM = re.compile(r"^(?:(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*\*?\s*)?(" + _NAME + r")$")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?(?:_dp)?)|(?P<name>" + _NAME
    + r")|(?P<op>\*\*|[-+*/(),]))")


class MechanismSyntaxError(ValueError):
    """A mechanism file could not be read; the message names the file, line and expectation."""

    def __init__(self, path, line, message):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class Reaction:
    """One reaction: ``reactants``/``products`` are ``(species, coefficient)`` pairs (merged by
    name, ``hv`` removed); ``rate`` is the file's expression, ``rate_py`` its Python form."""

    label: str
    reactants: tuple
    products: tuple
    rate: str
    rate_py: str
    line: int

    def net(self, name: str) -> float:
        return dict(self.products).get(name, 0.0) - dict(self.reactants).get(name, 0.0)


@dataclass(frozen=True)
class Mechanism:
    """A parsed mechanism (see module docstring for the file syntax)."""

    path: str
    conc_unit: str
    time_unit: str
    variable: tuple
    fixed: tuple
    atoms: dict
    parameters: dict
    qssa: tuple
    reactions: tuple
    source_hash: str
    text: str = field(repr=False, default="")

    @property
    def time_unit_seconds(self) -> float:
        return TIME_UNITS[self.time_unit]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.reactions]

    def index(self, name: str) -> int:
        """Index of variable species ``name``."""
        try:
            return self.variable.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a #DEFVAR species of {self.path}; "
                           f"known: {', '.join(self.variable)}") from None

    def reaction_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"no reaction labelled {label!r} in {self.path}") from None

    def stoichiometry(self) -> np.ndarray:
        """Net stoichiometric matrix, shape ``(n_variable, n_reactions)``."""
        s = np.zeros((len(self.variable), len(self.reactions)))
        for j, r in enumerate(self.reactions):
            for i, name in enumerate(self.variable):
                s[i, j] = r.net(name)
        return s

    def atom_vector(self, element: str) -> np.ndarray:
        """Number of atoms of ``element`` in each variable species (0 where IGNORE/undeclared)."""
        return np.array([self.atoms.get(n, {}).get(element, 0.0) for n in self.variable])


def read_mechanism(path) -> Mechanism:
    """Read and parse the mechanism file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read mechanism file {path}: {exc}") from None
    return parse_mechanism(text, str(path))


def _strip_comments(text: str, path: str) -> str:
    out, i, n, line = [], 0, len(text), 1
    while i < n:
        ch = text[i]
        if ch == "{":
            start = line
            j = text.find("}", i + 1)
            if j < 0:
                raise MechanismSyntaxError(path, start, "unterminated comment: expected '}'")
            chunk = text[i:j + 1]
            out.append("".join("\n" if c == "\n" else " " for c in chunk))
            line += chunk.count("\n")
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            if ch == "\n":
                line += 1
            out.append(ch)
            i += 1
    return "".join(out)


def _statements(body: list[tuple[int, str]], path: str):
    """Split (line, text) pairs of one section into ``;``-terminated statements."""
    buf, start = "", None
    for lineno, txt in body:
        while txt:
            k = txt.find(";")
            piece = txt if k < 0 else txt[:k]
            if piece.strip() and start is None:
                start = lineno
            buf += " " + piece
            if k < 0:
                break
            if buf.strip():
                yield start, buf.strip()
            elif start is None:
                raise MechanismSyntaxError(path, lineno, "empty statement before ';'")
            buf, start = "", None
            txt = txt[k + 1:]
    if buf.strip():
        raise MechanismSyntaxError(path, start, f"expected ';' at the end of {buf.strip()!r}")


def parse_mechanism(text: str, path: str = "<string>") -> Mechanism:
    """Parse mechanism source ``text``; ``path`` is used in error messages."""
    clean = _strip_comments(text, path)
    sections: list[tuple[str, int, list]] = []
    units = None
    qssa: list[str] = []
    for lineno, raw in enumerate(clean.split("\n"), start=1):
        s = raw.strip()
        if s.startswith("#"):
            word = s.split()[0].upper()
            rest = s[len(word):].strip()
            if word == "#UNITS":
                parts = rest.split()
                if len(parts) != 2 or parts[0] not in CONC_UNITS or parts[1] not in TIME_UNITS:
                    raise MechanismSyntaxError(
                        path, lineno, f"expected '#UNITS <conc> <time>' with <conc> one of "
                        f"{', '.join(CONC_UNITS)} and <time> one of {', '.join(TIME_UNITS)}; "
                        f"got {rest!r}")
                units = (parts[0], parts[1], lineno)
                sections.append(("#NONE", lineno, []))
            elif word == "#QSSA":
                qssa.extend((lineno, q) for q in rest.replace(",", " ").split())
                sections.append(("#NONE", lineno, []))
            elif word in ("#DEFVAR", "#DEFFIX", "#EQUATIONS", "#PARAMETERS"):
                sections.append((word, lineno, [(lineno, rest)] if rest else []))
            elif word in _IGNORED_DIRECTIVES:
                sections.append(("#NONE", lineno, []))
            else:
                raise MechanismSyntaxError(
                    path, lineno, f"unsupported directive {word}; expected one of #UNITS, "
                    "#DEFVAR, #DEFFIX, #PARAMETERS, #QSSA, #EQUATIONS")
        elif s:
            if not sections or sections[-1][0] == "#NONE":
                raise MechanismSyntaxError(path, lineno, f"text outside a section: {s!r}; expected "
                                           "a directive such as #DEFVAR or #EQUATIONS first")
            sections[-1][2].append((lineno, raw))
    if units is None:
        raise MechanismSyntaxError(path, 1, "missing '#UNITS <conc> <time>' directive "
                                   "(e.g. '#UNITS ppm min' or '#UNITS molec/cm3 s')")

    variable, fixed, atoms, params = [], [], {}, {}
    eq_bodies = []
    for word, _, body in sections:
        if word in ("#DEFVAR", "#DEFFIX"):
            for ln, st in _statements(body, path):
                name, comp = _parse_species(st, ln, path)
                if name in variable or name in fixed:
                    raise MechanismSyntaxError(path, ln, f"species {name!r} declared twice")
                (variable if word == "#DEFVAR" else fixed).append(name)
                if comp:
                    atoms[name] = comp
        elif word == "#PARAMETERS":
            for ln, st in _statements(body, path):
                m = re.fullmatch(r"(" + _NAME + r")\s*=\s*(\S+)", st)
                try:
                    params[m.group(1)] = float(m.group(2).replace("D", "e").replace("d", "e"))
                except (AttributeError, ValueError):
                    raise MechanismSyntaxError(path, ln, f"expected 'NAME = number ;' in "
                                               f"#PARAMETERS, got {st!r}") from None
        elif word == "#EQUATIONS":
            eq_bodies.extend(_statements(body, path))
    if not variable:
        raise MechanismSyntaxError(path, 1, "no #DEFVAR species declared")
    for ln, q in qssa:
        if q not in variable:
            raise MechanismSyntaxError(path, ln, f"#QSSA species {q!r} is not a #DEFVAR species")

    reactions = []
    for k, (ln, st) in enumerate(eq_bodies):
        reactions.append(_parse_equation(st, ln, path, k, variable, fixed, params))
    seen: dict[str, int] = {}
    for r in reactions:
        if r.label in seen:
            raise MechanismSyntaxError(path, r.line, f"duplicate reaction label <{r.label}> "
                                       f"(first used on line {seen[r.label]})")
        seen[r.label] = r.line
    if not reactions:
        raise MechanismSyntaxError(path, len(text.split("\n")), "no reactions in #EQUATIONS")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Mechanism(path=path, conc_unit=units[0], time_unit=units[1], variable=tuple(variable),
                     fixed=tuple(fixed), atoms=atoms, parameters=params,
                     qssa=tuple(dict.fromkeys(q for _, q in qssa)), reactions=tuple(reactions),
                     source_hash=digest, text=text)


def _parse_species(st: str, ln: int, path: str):
    m = re.fullmatch(r"(" + _NAME + r")\s*(?:=\s*(.*))?", st.strip())
    if not m:
        raise MechanismSyntaxError(path, ln, f"expected 'NAME = composition ;' or 'NAME ;', "
                                   f"got {st!r}")
    name, comp = m.group(1), (m.group(2) or "").strip()
    if not comp or comp.upper() == "IGNORE":
        return name, {}
    atoms: dict[str, float] = {}
    for term in comp.split("+"):
        a = re.fullmatch(r"\s*(\d*)\s*([A-Z][a-z]?)\s*", term)
        if not a:
            raise MechanismSyntaxError(path, ln, f"bad atomic composition {comp!r} for {name}: "
                                       "expected e.g. 'N + 2O' or 'IGNORE'")
        atoms[a.group(2)] = atoms.get(a.group(2), 0.0) + float(a.group(1) or 1)
    return name, atoms


def _parse_side(side: str, ln: int, path: str, what: str):
    terms: dict[str, float] = {}
    if not side.strip():
        return terms
    for term in side.split("+"):
        t = term.strip()
        m = _TERM.match(t)
        if not m:
            raise MechanismSyntaxError(path, ln, f"bad {what} term {t!r}: expected "
                                       "'[coefficient] SPECIES', e.g. '2 HO2' or '0.5 X'")
        coef_txt = t[:m.start(2)].replace("*", "").strip()
        coef = float(coef_txt) if coef_txt else 1.0
        name = m.group(2)
        if name.lower() == "hv":
            continue
        terms[name] = terms.get(name, 0.0) + coef
    return terms


def _parse_equation(st, ln, path, k, variable, fixed, params) -> Reaction:
    m = re.fullmatch(r"(?:<\s*([^>]*?)\s*>)?(.*?)=(.*?):(.*)", st, flags=re.S)
    if not m:
        raise MechanismSyntaxError(path, ln, f"expected '<label> reactants = products : rate ;', "
                                   f"got {st!r}")
    label = m.group(1) or f"R{k + 1}"
    lhs = _parse_side(m.group(2), ln, path, "reactant")
    rhs = _parse_side(m.group(3), ln, path, "product")
    for name in list(lhs) + list(rhs):
        if name not in variable and name not in fixed:
            raise MechanismSyntaxError(path, ln, f"undeclared species {name!r} in <{label}>: "
                                       "expected it in #DEFVAR or #DEFFIX")
    for name, c in lhs.items():
        if c != int(c) or c < 1:
            raise MechanismSyntaxError(path, ln, f"reactant coefficient {c:g} of {name} in "
                                       f"<{label}>: expected a positive whole number (it is the "
                                       "reaction order)")
    rate = m.group(4).strip()
    if not rate:
        raise MechanismSyntaxError(path, ln, f"missing rate expression after ':' in <{label}>")
    rate_py = translate_rate(rate, ln, path, params)
    return Reaction(label, tuple(lhs.items()), tuple(rhs.items()), rate, rate_py, ln)


def translate_rate(expr: str, ln: int, path: str, params: dict) -> str:
    """Translate a KPP rate expression into Python source using ``temp, press, cair, par[i]``.

    Photolysis names ``J_*`` are added to ``params`` (default 0) when first seen."""
    toks, pos = [], 0
    while pos < len(expr):
        if not expr[pos:].strip():
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise MechanismSyntaxError(path, ln, f"unexpected character {expr[pos:].strip()[0]!r} "
                                       f"in rate expression {expr!r}")
        toks.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    out, skip_paren = [], False
    for i, (kind, val) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if skip_paren:
            skip_paren = False
            continue
        if kind == "num":
            out.append(repr(float(val.replace("_dp", "").replace("D", "e").replace("d", "e"))))
        elif kind == "op":
            out.append(val)
        else:
            up = val.upper()
            if nxt == "(" and (up in _FUNCS or up in _RATE_LAWS):
                if up in _FUNCS:
                    out.append(_FUNCS[up])
                else:
                    nargs = _count_args(toks, i + 1)
                    ok = {"ARR": (2, 3), "ARR2": (2, 3), "TROE": (4, 6)}[up]
                    if nargs not in ok:
                        raise MechanismSyntaxError(path, ln, f"{up} takes {ok[0]} or {ok[1]} "
                                                   f"arguments, got {nargs} in {expr!r}")
                    if up == "TROE":
                        out.append("_troe6" if nargs == 6 else "_troe(temp, cair, ")
                    elif up == "ARR" and nargs == 3:
                        out.append("_arr3(temp, ")
                    else:
                        out.append("_arr2(temp, ")
                    skip_paren = out[-1].endswith(", ")
            elif val in _ENV:
                out.append(_ENV[val])
            elif val in params or val.startswith("J_"):
                params.setdefault(val, 0.0)
                out.append(f"par[{list(params).index(val)}]")
            else:
                raise MechanismSyntaxError(
                    path, ln, f"unknown name {val!r} in rate expression {expr!r}: expected a "
                    "number, TEMP, PRESS, CAIR, a J_* photolysis rate, a #PARAMETERS name or one "
                    f"of {', '.join(list(_FUNCS) + list(_RATE_LAWS))}(...)")
    src = " ".join(out)
    try:
        compile(src, "<rate>", "eval")
    except SyntaxError:
        raise MechanismSyntaxError(path, ln, f"malformed rate expression {expr!r}: expected an "
                                   "arithmetic expression") from None
    return src


def _count_args(toks, i_open):
    depth, n, empty = 0, 1, True
    for kind, val in toks[i_open:]:
        if val == "(":
            depth += 1
        elif val == ")":
            depth -= 1
            if depth == 0:
                return 0 if empty else n
        elif val == "," and depth == 1:
            n += 1
        else:
            empty = False
    return -1
