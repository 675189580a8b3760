"""Source tags: tag set, chemistry apportionment (PSAT/OSAT with GRS), linear helpers."""

from types import SimpleNamespace

import numpy as np
import pytest

from aqforecast.chemistry import ChemistryDiagnostics, ChemistryOperator, read_mechanism
from aqforecast.chemistry.solver import DEFAULT_MECHANISM
from aqforecast.constants import M_AIR
from aqforecast.emissions.model import EmissionFields
from aqforecast.kernels.apportion import apportion_production_loss, repartition_family
from aqforecast.species import get
from aqforecast.tagging import (ModelTagChemistry, TagSet, TagState, apportion_chemistry,
                                boundary_fractions, from_fractions, initial_tags, o3_nox_weight,
                                sum_check, tag_emissions, to_fractions)

SPECIES = ["NO", "NO2", "O3", "ROC", "HNO3", "SNGN", "H2O2", "SO2", "SO4", "NH3", "NH4", "NO3",
           "PPM25"]
SHAPE = (2, 3, 4)
SOURCES = [(r, s) for r in ("A", "B", "outside") for s in ("industry", "traffic")]


def _tagset(dtype="float64", species=("O3", "SO4", "NO3", "NH4", "PPM25", "H2O2", "SNGN")):
    return TagSet(SOURCES, species, SPECIES, True, dtype)


def _molar(name, x):
    sp = get(name)
    return x * (M_AIR * 1e3 / sp.molar_mass) if sp.phase == "aerosol" else x


def _state(seed=0):
    rng = np.random.default_rng(seed)
    c = np.zeros((len(SPECIES),) + SHAPE)
    for name, hi in (("NO", 30), ("NO2", 40), ("O3", 60), ("ROC", 800), ("HNO3", 5), ("H2O2", 2),
                     ("SO2", 20), ("NH3", 20)):
        c[SPECIES.index(name)] = rng.uniform(0.5, hi, SHAPE) * 1e-9
    for name, ugkg in (("SO4", 10.0), ("NH4", 3.0), ("NO3", 5.0), ("SNGN", 1.0), ("PPM25", 20.0)):
        c[SPECIES.index(name)] = rng.uniform(0.1, ugkg, SHAPE) * 1e-9
    return c


def _random_tags(ts, conc, seed=1, dtype=None):
    rng = np.random.default_rng(seed)
    state = TagState(ts, SHAPE) if dtype is None else TagState(
        ts, data=np.zeros((ts.ntagged, ts.ntag) + SHAPE, dtype=dtype))
    for s in ts.species:
        share = rng.dirichlet(np.full(ts.ntag, 0.7), size=SHAPE)      # (..., ntag)
        state[s][...] = np.moveaxis(share, -1, 0) * conc[SPECIES.index(s)]
    return state


def _met_kwargs():
    cz = np.linspace(-0.3, 1.0, int(np.prod(SHAPE))).reshape(SHAPE)     # night and day cells
    return dict(cos_zenith=np.maximum(cz, 0.0), relative_humidity=60.0, cloud_fraction=0.6,
                cloud_water=np.where(cz > 0.7, 0.3, 0.0))


@pytest.fixture(scope="module")
def op():
    return ChemistryOperator(None, SPECIES, solver="ros3")


def _steps(op, ts, conc, tags, n=3, dt=600.0, temp=288.0):
    reports = []
    for _ in range(n):
        before = ts.snapshot(conc)
        diag = op(conc, temp, 95000.0, dt, **_met_kwargs())
        reports.append(apportion_chemistry(tags, before, conc, diag, ts))
    return reports, diag


# ----------------------------------------------------------------------- tag set
def test_tagset_expands_precursor_families_and_indexes_tags():
    ts = _tagset(species=("SO4", "NO3", "NH4", "O3"))
    assert ts.species == ["NO", "NO2", "O3", "ROC", "HNO3", "SO2", "SO4", "NH3", "NH4", "NO3"]
    assert ts.added_species == ["NO", "NO2", "ROC", "HNO3", "SO2", "NH3"]
    assert ts.ntag == 8 and ts.tags[-2:] == (("initial", "ic"), ("boundary", "bc"))
    assert ts.index("B", "traffic") == 3 and ts.initial_index == 6 and ts.boundary_index == 7
    assert list(ts.regions[:2]) == ["A", "A"] and list(ts.sectors[-2:]) == ["ic", "bc"]
    np.testing.assert_array_equal(ts.sector_indices("industry"), [0, 2, 4])
    np.testing.assert_array_equal(ts.model_rows, [0, 1, 2, 3, 4, 7, 8, 9, 10, 11])
    assert ts.nbytes((2, 3, 4)) == 10 * 8 * 24 * 8
    one = TagSet(SOURCES, ["PPM25"], SPECIES, initial_and_boundary=False)
    assert one.species == ["PPM25"] and one.tags[-1] == ("background", "icbc")
    assert one.initial_index == one.boundary_index == 6
    with pytest.raises(ValueError, match="not model species"):
        TagSet(SOURCES, ["CO"], SPECIES)
    with pytest.raises(ValueError, match="reserved"):
        TagSet([("initial", "x")], ["O3"], SPECIES)


def test_tagset_from_sample_config(sample_config):
    from aqforecast.config import load_config
    cfg = load_config(sample_config)
    ts = TagSet.from_config(cfg)
    assert ts.ntag == (len(cfg.regions) + 1) * len(cfg.tags.sectors) + 2
    assert ts.regions[len(cfg.tags.sectors) * len(cfg.regions)] == "outside"
    assert set(cfg.tags.species) <= set(ts.species)
    assert {"NO", "ROC", "HNO3", "NH3"} <= set(ts.added_species)
    assert ts.dtype == np.dtype(cfg.tags.dtype)


# ----------------------------------------------------------------------- kernels
def _reference_pl(tags, weights, production, before, after):
    p = np.maximum(np.maximum(production, after - before), 0.0)
    denom = before + p
    f = np.where(denom > 0.0, after / np.where(denom > 0.0, denom, 1.0), 0.0)
    new = np.maximum((tags.astype(float) + p * weights) * f, 0.0)
    s = new.sum(axis=0)
    return np.where(s > 0.0, new * (after / np.where(s > 0.0, s, 1.0)), after / tags.shape[0])


@pytest.mark.parametrize("ntag, shape, seed", [(1, (1, 1, 1), 0), (5, (2, 3, 4), 1),
                                               (9, (3, 5, 2), 2)])
def test_production_loss_kernel_matches_numpy_reference(ntag, shape, seed):
    rng = np.random.default_rng(seed)
    tags = rng.uniform(0, 1, (ntag,) + shape)
    a1, a2, b1 = (rng.uniform(0, 1, (ntag,) + shape) for _ in range(3))
    wa = rng.uniform(0, 1, shape)
    prod = rng.uniform(0, 0.5, shape)
    before = tags.sum(0) * rng.uniform(0.99, 1.01, shape)
    after = rng.uniform(0.2, 2.0, shape)
    A, B = a1 + 0.5 * a2, b1
    w = wa * A / A.sum(0) + (1 - wa) * B / B.sum(0)
    corr = np.empty(shape)
    got = tags.copy()
    apportion_production_loss(got, a1, a2, 0.5, b1, wa, True, prod, before, after, corr)
    np.testing.assert_allclose(got, _reference_pl(tags, w, prod, before, after), rtol=1e-13)
    np.testing.assert_allclose(got.sum(0), after, rtol=1e-14)
    # own shares; strided float32 view
    big = np.zeros((ntag,) + (shape[0], shape[1] + 2, shape[2] + 2), dtype=np.float32)
    view = big[:, :, 1:-1, 1:-1]
    view[...] = tags
    apportion_production_loss(view, view, view, 0.0, view, wa, False, prod, before, after, corr)
    ref = _reference_pl(tags.astype(np.float32), tags / tags.sum(0), prod, before, after)
    np.testing.assert_allclose(view, ref, rtol=1e-6)
    assert np.all(big[:, :, 0] == 0) and np.all(big[:, :, :, -1] == 0)


def test_production_loss_ignores_a_precursor_set_it_gives_no_weight():
    """Where one precursor set's tags are not finite (its sum fails ``> 0``), the weights come
    from the other set alone, and the non-finite tags do not reach the result (as in a
    cell-by-cell evaluation of the rule)."""
    rng = np.random.default_rng(7)
    ntag, shape = 4, (1, 2, 3)
    tags = rng.uniform(0, 1, (ntag,) + shape)
    a1 = rng.uniform(0, 1, (ntag,) + shape)
    a1[:, 0, 1, 2] = np.nan
    a2 = rng.uniform(0, 1, (ntag,) + shape)
    b1 = rng.uniform(0, 1, (ntag,) + shape)
    wa = np.full(shape, 0.6)
    prod = np.full(shape, 0.3)
    before = tags.sum(0)
    after = before * 0.9 + 0.3
    got = tags.copy()
    corr = np.empty(shape)
    apportion_production_loss(got, a1, a2, 1.0, b1, wa, True, prod, before, after, corr)
    assert np.all(np.isfinite(got))
    A, B = a1 + a2, b1
    w = wa * A / A.sum(0) + (1 - wa) * B / B.sum(0)
    w[:, 0, 1, 2] = (B / B.sum(0))[:, 0, 1, 2]  # A excluded there: B alone
    np.testing.assert_allclose(got, _reference_pl(tags, w, prod, before, after), rtol=1e-13)
    assert corr.max() < 1e-12


def test_kernel_fallbacks_without_precursors_or_tags():
    shape = (1, 1, 2)
    tags = np.array([[[[0.0, 1.0]]], [[[0.0, 3.0]]]])
    zero = np.zeros((2,) + shape)
    corr = np.empty(shape)
    # no precursor tags -> own shares; cell 0 has no tags either -> equal shares
    apportion_production_loss(tags, zero, zero, 0.0, zero, np.ones(shape), True,
                              np.full(shape, 2.0), np.array([[[0.0, 4.0]]]),
                              np.array([[[2.0, 6.0]]]), corr)
    np.testing.assert_allclose(tags[:, 0, 0], [[1.0, 1.5], [1.0, 4.5]])


def test_repartition_family_keeps_family_totals():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, (4, 1, 2, 3)), rng.uniform(0, 1, (4, 1, 2, 3))
    ta = 2.0 * a + b
    after_a, after_b = rng.uniform(0, 1, (1, 2, 3)), None
    after_b = (ta.sum(0) - 2.0 * after_a)
    active = np.ones((1, 2, 3), bool)
    active[0, 0, 0] = False
    a0, b0 = a.copy(), b.copy()
    corr = np.empty((1, 2, 3))
    repartition_family(a, b, 2.0, 1.0, after_a, after_b, ta.sum(0), active, corr)
    np.testing.assert_allclose(2.0 * a + b, ta, rtol=1e-13)
    np.testing.assert_allclose(a.sum(0)[active], after_a[active], rtol=1e-13)
    assert np.all(a[:, 0, 0, 0] == a0[:, 0, 0, 0]) and np.all(b[:, 0, 0, 0] == b0[:, 0, 0, 0])
    assert corr.max() < 1e-14



def test_repartition_family_equals_cell_by_cell_reference():
    """The row-wise kernel equals the cell-by-cell rule: active cells take the per-tag family
    shares (equal shares where the family has no tag left), inactive cells are untouched;
    several lines (threads' chunks, the next line's prefetch), zero-family cells included."""
    rng = np.random.default_rng(8)
    ntag, shape = 5, (3, 4, 7)
    a, b = rng.uniform(0, 1, (ntag,) + shape), rng.uniform(0, 1, (ntag,) + shape)
    a[:, 1, 2, 3] = 0.0
    b[:, 1, 2, 3] = 0.0
    after_a, after_b = rng.uniform(0, 1, shape), rng.uniform(0, 1, shape)
    reference = rng.uniform(0.5, 2, shape)
    active = rng.uniform(0, 1, shape) > 0.3
    active[1, 2, 3] = True
    tot = (2.0 * a + b).sum(0)
    share = np.clip((2.0 * a + b) / np.where(tot > 0, tot, 1.0), 0.0, None)
    want_a = np.where(active, np.where(tot > 0, after_a * share, after_a / ntag), a)
    want_b = np.where(active, np.where(tot > 0, after_b * share, after_b / ntag), b)
    want_corr = np.where(active, np.abs(tot - reference) / reference, 0.0)
    corr = np.empty(shape)
    repartition_family(a, b, 2.0, 1.0, after_a, after_b, reference, active, corr)
    np.testing.assert_allclose(a, want_a, rtol=1e-14, atol=0)
    np.testing.assert_allclose(b, want_b, rtol=1e-14, atol=0)
    np.testing.assert_allclose(corr, want_corr, rtol=1e-14, atol=0)

# ----------------------------------------------------------------------- chemistry (real operator)
def test_apportionment_keeps_sum_and_positivity_with_grs(op):
    ts = _tagset()
    conc = _state(0)
    tags = _random_tags(ts, conc)
    untouched = {s: tags[s].copy() for s in ("ROC", "PPM25")}
    reports, diag = _steps(op, ts, conc, tags, n=4)
    assert np.any(diag.sulfate_aqueous > 0) and np.any(diag.nitrate_partitioned != 0)
    assert np.any(diag.p_hno3 == 0) and np.any(diag.p_hno3 > 0)       # night and day
    assert sum_check(tags, conc, ts) < 1e-10
    for s in ts.species:
        assert np.all(tags[s] >= 0.0), s
        assert sum_check(tags[s], conc[SPECIES.index(s)]) < 1e-10, s
    for s, t in untouched.items():
        np.testing.assert_array_equal(tags[s], t)
    assert max(max(r.values()) for r in reports) < 1e-12
    assert set(reports[0]) >= {"O3", "HNO3", "SO4", "SO2", "NO", "NO2", "NO3", "NH4", "H2O2"}


def test_all_one_tag_equals_bulk(op):
    ts = _tagset()
    conc = _state(4)
    tags = TagState(ts, SHAPE)
    for s in ts.species:
        tags[s][2] = conc[SPECIES.index(s)]
    _steps(op, ts, conc, tags, n=3)
    for s in ts.species:
        np.testing.assert_allclose(tags[s][2], conc[SPECIES.index(s)], rtol=1e-13, atol=0)
        assert np.all(np.delete(tags[s], 2, axis=0) == 0.0)


def test_so4_production_goes_to_so2_shares_and_tn_ta_are_conserved():
    # a fresh operator (no radical pool carried over): no clipping + mass fixer, which would
    # move N between HNO3/SNGN without a reaction (apportioned as loss by share)
    op = ChemistryOperator(None, SPECIES, solver="ros3")
    ts = _tagset()
    conc = _state(5)
    tags = _random_tags(ts, conc, seed=6)
    so2_share = tags["SO2"] / tags["SO2"].sum(0)
    so4_0 = tags["SO4"].copy()
    nox = tags["NO"] + tags["NO2"]
    nox_share = nox / nox.sum(0)
    tn0 = tags["HNO3"] + _molar("NO3", tags["NO3"])
    ta0 = tags["NH3"] + _molar("NH4", tags["NH4"])
    before = ts.snapshot(conc)
    diag = op(conc, 290.0, 95000.0, 600.0, **_met_kwargs())
    apportion_chemistry(tags, before, conc, diag, ts)
    p_so4 = diag.sulfate_produced * get("SO4").molar_mass / (M_AIR * 1e3)     # kg kg-1
    d_so4 = conc[SPECIES.index("SO4")] - before["SO4"]
    assert p_so4.max() > 0
    np.testing.assert_allclose(d_so4, p_so4, rtol=1e-8)
    np.testing.assert_allclose(tags["SO4"] - so4_0, d_so4 * so2_share, rtol=1e-10,
                               atol=1e-13 * so4_0.max())      # round-off of c_k + P w_k
    np.testing.assert_allclose(tags["SO2"] / tags["SO2"].sum(0), so2_share, rtol=1e-12)
    # each tag's total nitrate gains exactly its NOx share of P(HNO3); total ammonia is kept
    tn = tags["HNO3"] + _molar("NO3", tags["NO3"])
    np.testing.assert_allclose(tn - tn0, diag.p_hno3 * nox_share, rtol=1e-8, atol=1e-24)
    np.testing.assert_allclose(tags["NH3"] + _molar("NH4", tags["NH4"]), ta0, rtol=1e-12)
    active = diag.nitrate_partitioned != 0
    bulk_no3 = conc[SPECIES.index("NO3")]
    np.testing.assert_allclose(tags["NO3"][:, active],
                               bulk_no3[active] * (tn / tn.sum(0))[:, active], rtol=1e-12)


# ----------------------------------------------------------------------- hand cases
def _hand_diag(r5, r6, r7=0.0, so4=0.0, dno3=0.0, dnh4=0.0, shape=(1, 1, 1)):
    mech = read_mechanism(DEFAULT_MECHANISM)
    rates = np.zeros((len(mech.labels),) + shape)
    rates[mech.labels.index("R5")] = r5
    rates[mech.labels.index("R6")] = r6
    rates[mech.labels.index("R7")] = r7
    rates[mech.labels.index("S1")] = so4
    z = np.zeros(shape)
    return ChemistryDiagnostics(mech.labels, list(mech.variable), mech.stoichiometry(), rates,
                                z, z, z + dno3, z + dnh4, z)


def _hand_state(ts, values, tag_shares):
    """Bulk mapping and tags for one cell; tag_shares[s] = list over the 3 source tags used."""
    bulk = {s: np.full((1, 1, 1), values.get(s, 0.0)) for s in ts.species}
    tags = TagState(ts, (1, 1, 1))
    for s in ts.species:
        sh = np.zeros(ts.ntag)
        sh[:3] = tag_shares.get(s, [1 / 3] * 3)
        tags[s][:, 0, 0, 0] = sh * bulk[s][0, 0, 0]
    return bulk, tags


@pytest.mark.parametrize("indicator, regime, expected", [
    (1.0, "threshold", [13.0, 13.0, 10.0]),      # NOx-limited: NOx shares
    (0.1, "threshold", [10.0, 11.2, 14.8]),      # VOC-limited: ROC shares
    (0.35, "smooth", [11.5, 12.1, 12.4])])       # transition: half and half
def test_o3_production_by_regime(indicator, regime, expected):
    ts = _tagset(species=("O3",))
    ppb = 1e-9
    shares = {"NO": [0.5, 0.5, 0.0], "NO2": [0.5, 0.5, 0.0], "ROC": [0.0, 0.2, 0.8]}
    before, tags = _hand_state(ts, {"O3": 30 * ppb, "NO": 5 * ppb, "NO2": 10 * ppb,
                                    "ROC": 500 * ppb}, shares)
    r6 = 1e-11
    after = {k: v.copy() for k, v in before.items()}
    after["O3"] += 6 * ppb
    after["NO2"] -= 2 * r6
    diag = _hand_diag(r5=indicator * r6, r6=r6, r7=r6)
    apportion_chemistry(tags, before, after, diag, ts, o3_regime=regime)
    np.testing.assert_allclose(tags["O3"][:3, 0, 0, 0] / ppb, expected, rtol=1e-12)
    np.testing.assert_allclose(tags["NO2"][:3, 0, 0, 0] + tags["NO"][:3, 0, 0, 0],
                               np.array([0.5, 0.5, 0]) * (15 * ppb - 2 * r6), rtol=1e-12)
    # net O3 loss is removed from every tag by share
    after["O3"] = before["O3"] * 0.5
    tags2 = _hand_state(ts, {"O3": 30 * ppb, "NO": 5 * ppb, "NO2": 10 * ppb, "ROC": 500 * ppb},
                        shares)[1]
    tags2["O3"][:3] = np.array([5.0, 10.0, 15.0]).reshape(3, 1, 1, 1) * ppb
    apportion_chemistry(tags2, before, after, diag, ts)
    np.testing.assert_allclose(tags2["O3"][:3, 0, 0, 0] / ppb, [2.5, 5.0, 7.5], rtol=1e-12)


def test_smooth_regime_weight():
    w = o3_nox_weight(np.array([0.1, 0.35, 0.5, np.inf, np.nan]), "smooth")
    np.testing.assert_allclose(w, [0.0, 0.5, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(o3_nox_weight(np.array([0.35, 0.36])), [0.0, 1.0])


def test_hand_nitrate_partitioning_keeps_each_tags_total_nitrate():
    ts = _tagset(species=("NO3",))
    ppb = 1e-9
    no3_ugkg = 2e-9                                   # kg kg-1
    x_no3 = _molar("NO3", no3_ugkg)
    before, tags = _hand_state(ts, {"HNO3": 4 * ppb, "NO3": no3_ugkg, "NO": 1 * ppb,
                                    "NO2": 1 * ppb},
                               {"HNO3": [1.0, 0.0, 0.0], "NO3": [0.0, 0.5, 0.5]})
    dx = 1.5 * ppb                                     # 1.5 ppb HNO3 -> particulate nitrate
    after = {k: v.copy() for k, v in before.items()}
    after["HNO3"] -= dx
    after["NO3"] += dx / _molar("NO3", 1.0)
    tn0 = tags["HNO3"] + _molar("NO3", tags["NO3"])
    apportion_chemistry(tags, before, after, _hand_diag(0, 0, dno3=dx), ts)
    tn = tags["HNO3"] + _molar("NO3", tags["NO3"])
    np.testing.assert_allclose(tn, tn0, rtol=1e-13, atol=1e-30)
    total = 4 * ppb + x_no3
    share = np.array([4 * ppb, x_no3 / 2, x_no3 / 2]) / total
    np.testing.assert_allclose(tags["NO3"][:3, 0, 0, 0], after["NO3"][0, 0, 0] * share,
                               rtol=1e-13)
    np.testing.assert_allclose(tags["HNO3"][:3, 0, 0, 0], after["HNO3"][0, 0, 0] * share,
                               rtol=1e-13)


def test_hand_so4_and_hno3_production_shares():
    ts = _tagset(species=("SO4", "HNO3"))
    ppb = 1e-9
    before, tags = _hand_state(ts, {"SO2": 10 * ppb, "SO4": 1e-9, "NO": 2 * ppb, "NO2": 8 * ppb,
                                    "HNO3": 1 * ppb},
                               {"SO2": [0.2, 0.3, 0.5], "NO": [1.0, 0.0, 0.0],
                                "NO2": [0.0, 0.25, 0.75], "SO4": [1.0, 0.0, 0.0]})
    dso2, r6 = 0.1 * ppb, 0.05 * ppb
    so4_kg = dso2 * get("SO4").molar_mass / (M_AIR * 1e3)
    after = {k: v.copy() for k, v in before.items()}
    after["SO2"] -= dso2
    after["SO4"] += so4_kg
    after["NO2"] -= r6
    after["HNO3"] += r6
    so4_0 = tags["SO4"][:3, 0, 0, 0].copy()
    apportion_chemistry(tags, before, after, _hand_diag(0, r6, so4=dso2), ts)
    np.testing.assert_allclose(tags["SO4"][:3, 0, 0, 0] - so4_0, so4_kg * np.array([.2, .3, .5]),
                               rtol=1e-12)
    np.testing.assert_allclose(tags["SO2"][:3, 0, 0, 0], 9.9 * ppb * np.array([.2, .3, .5]),
                               rtol=1e-12)
    nox_share = np.array([2.0, 2.0, 6.0]) / 10.0
    np.testing.assert_allclose(tags["HNO3"][:3, 0, 0, 0], (1 / 3) * ppb + r6 * nox_share,
                               rtol=1e-12)
    np.testing.assert_allclose(tags["NO2"][:3, 0, 0, 0], (8 * ppb - r6) * nox_share, rtol=1e-12)


# ----------------------------------------------------------------------- float32 and adapters
def test_float32_error():
    """float32 storage: tag sums within 2e-7 of the bulk, tags within 1e-6 of float64."""
    op = ChemistryOperator(None, SPECIES, solver="ros3")
    ts64, ts32 = _tagset("float64"), _tagset("float32")
    conc64, conc32 = _state(7), _state(7)
    t64 = _random_tags(ts64, conc64, seed=8)
    t32 = TagState(ts32, data=t64.data.astype(np.float32))
    op32 = ChemistryOperator(None, SPECIES, solver="ros3")
    for _ in range(6):
        for ts, conc, tags, o in ((ts64, conc64, t64, op), (ts32, conc32, t32, op32)):
            before = ts.snapshot(conc)
            diag = o(conc, 290.0, 95000.0, 600.0, **_met_kwargs())
            apportion_chemistry(tags, before, conc, diag, ts)
    assert sum_check(t64, conc64, ts64) < 1e-12
    err_sum = sum_check(t32, conc32, ts32)
    big = (t64.data > 1e-6 * t64.data.max(axis=1, keepdims=True)) & (t64.data > 1e-30)
    err_tag = np.max(np.abs(t32.data - t64.data)[big] / t64.data[big])
    assert 1e-9 < err_sum < 2e-7
    assert err_tag < 1e-6


def test_model_tag_chemistry_adapter_updates_halo_view(op):
    ts = _tagset()
    conc = _state(9)
    h = 2
    nz, ny, nx = SHAPE
    tagc = np.zeros((ts.ntagged * ts.ntag, nz + 2 * h, ny + 2 * h, nx + 2 * h))
    interior = (slice(None), slice(h, h + nz), slice(h, h + ny), slice(h, h + nx))
    ref = _random_tags(ts, conc)
    tagc[interior] = ref.data.reshape((-1,) + SHAPE)
    q = np.zeros((len(SPECIES), nz + 2 * h, ny + 2 * h, nx + 2 * h))
    q[interior] = conc
    model = SimpleNamespace(tagc=tagc, interior=interior, tagged=ts.species,
                            tag_labels=list(ts.tags), species=SPECIES,
                            conc=lambda: q[interior])
    work = np.ascontiguousarray(q[interior])
    before = work.copy()
    diag = op(work, 290.0, 95000.0, 600.0, **_met_kwargs())
    q[interior] = work
    ModelTagChemistry(ts)(model, before, diag)
    got = tagc[interior].reshape((ts.ntagged, ts.ntag) + SHAPE)
    assert sum_check(got, q[interior], ts) < 1e-10
    assert np.all(tagc[:, 0] == 0.0)


def test_initial_boundary_emission_helpers():
    ts = _tagset(species=("SO4", "PPM25"))
    conc = _state(2)
    init = initial_tags(ts, conc)
    assert init.data.shape == (ts.ntagged, ts.ntag) + SHAPE
    np.testing.assert_array_equal(init["SO2"][ts.initial_index], conc[SPECIES.index("SO2")])
    assert init.data.sum() == pytest.approx(sum(conc[SPECIES.index(s)].sum() for s in ts.species))
    assert sum_check(init, conc, ts) == 0.0
    bc = boundary_fractions(ts, (2, 5))
    assert bc.shape == (ts.ntagged, ts.ntag, 2, 5) and np.all(bc.sum(1) == 1.0)
    assert np.all(bc[:, ts.boundary_index] == 1.0)
    frac = to_fractions(init["SO2"], conc[SPECIES.index("SO2")] * 0, ts.initial_index)
    assert np.all(frac[ts.initial_index] == 1.0)
    frac = to_fractions(init["SO4"], conc[SPECIES.index("SO4")], ts.initial_index)
    np.testing.assert_allclose(from_fractions(frac, conc[SPECIES.index("SO4")]), init["SO4"])
    # emissions: 6 (region, sector) tags of 3 species onto the 8-tag axis
    rng = np.random.default_rng(0)
    em_species = ("SO2", "NO", "PPM25")
    surf = rng.uniform(size=(6, 3, 3, 4))
    elev = rng.uniform(size=(6, 3, 2, 1))
    order = [SOURCES[n] for n in (5, 4, 3, 2, 1, 0)]
    fields = EmissionFields(None, em_species, surf, elev, np.array([[1, 2]]), SHAPE,
                            tuple(order))
    out = tag_emissions(fields, ts)
    assert out.species == ("SO2", "PPM25") and out.surface.shape == (8, 2, 3, 4)
    np.testing.assert_array_equal(out.surface[ts.index("A", "industry"), 1], surf[5, 2])
    assert np.all(out.surface[6:] == 0) and np.all(out.elevated[6:] == 0)
    np.testing.assert_allclose(out.to_dense().sum(0)[0], fields.to_dense().sum(0)[0])


def test_sulfate_tags_equal_brute_force_runs():
    """SO2 -> SO4 is linear (fixed k, no cloud): tag k = a run with only source k (SCIENCE
    10.4.3), to the solver's tolerance (adaptive steps differ between the runs: ~7e-9)."""
    ts = _tagset(species=("SO4",))
    conc = _state(11)
    tags = _random_tags(ts, conc, seed=12)
    kw = dict(cos_zenith=0.5, k_so2=2e-5, relative_humidity=60.0)
    op = ChemistryOperator(None, SPECIES, solver="ros3", rtol=1e-9)
    before = ts.snapshot(conc)
    diag = op(conc, 290.0, 95000.0, 1800.0, **kw)
    apportion_chemistry(tags, before, conc, diag, ts)
    i2, i4 = SPECIES.index("SO2"), SPECIES.index("SO4")
    base = _state(11)
    init = _random_tags(ts, base, seed=12)
    for k in range(ts.ntag):
        c = base.copy()
        c[i2], c[i4] = init["SO2"][k], init["SO4"][k]
        ChemistryOperator(None, SPECIES, solver="ros3", rtol=1e-9)(c, 290.0, 95000.0, 1800.0, **kw)
        np.testing.assert_allclose(tags["SO4"][k], c[i4], rtol=1e-7)
        np.testing.assert_allclose(tags["SO2"][k], c[i2], rtol=1e-7)


def test_apportion_report_keeps_nan_corrections():
    """A NaN tag-sum correction (non-finite tags) must survive the report's running maximum
    (Python's max(0.0, nan) is 0.0), so the warning names it."""
    import math

    from aqforecast.tagging.apportion import _worse

    assert _worse(0.0, np.array([1e-9, 3e-9])) == 3e-9
    assert _worse(5e-9, np.array([1e-9])) == 5e-9
    assert math.isnan(_worse(0.0, np.array([1e-9, np.nan])))
    assert math.isnan(_worse(math.nan, np.array([1e-9])))
    assert _worse(2e-9, np.zeros(0)) == 2e-9
