"""Chinese / English labels of the bulletin: cities, source sectors and regions, lead bands.

Labels only: no number of the page comes from here. City names meet the page in two spellings,
the configured region names of the city table (``Hangzhou``) and the station list's city column
of the verification and receptor tables (``杭州``); :func:`city_key` maps both to one key so the
rows of one city line up. Names not listed here stay as written (matched only when equal).
"""

from __future__ import annotations

__all__ = [
    "BANDS",
    "CITY_ZH",
    "SECTOR_ZH",
    "band_of",
    "city_en",
    "city_key",
    "city_label",
    "source_label",
]

#: Prefecture-level cities of Zhejiang, Shanghai and the nearby Yangtze River Delta.
CITY_ZH = {
    "Hangzhou": "杭州", "Ningbo": "宁波", "Wenzhou": "温州", "Jiaxing": "嘉兴", "Huzhou": "湖州",
    "Shaoxing": "绍兴", "Jinhua": "金华", "Quzhou": "衢州", "Zhoushan": "舟山", "Taizhou": "台州",
    "Lishui": "丽水", "Shanghai": "上海", "Nanjing": "南京", "Suzhou": "苏州", "Wuxi": "无锡",
    "Changzhou": "常州", "Nantong": "南通", "Yangzhou": "扬州", "Zhenjiang": "镇江",
    "Hefei": "合肥", "Xuancheng": "宣城", "Huangshan": "黄山",
}
_ZH_EN = {v: k for k, v in CITY_ZH.items()}

#: Emission sectors and the initial-condition / boundary tags.
SECTOR_ZH = {"industry": "工业", "power": "电力", "residential": "民用", "transport": "交通",
             "agriculture": "农业", "shipping": "船舶", "solvent": "溶剂", "ic": "初始场",
             "bc": "边界", "all": "全部", "*": "全部"}
_REGION_ZH = {"initial": "初始场", "boundary": "边界输送", "outside": "区外", "*": "全部"}

#: Lead bands of the city table: (last lead hour of the band, Chinese, English).
BANDS = ((72, "第1–3天", "days 1–3"), (168, "第4–7天", "days 4–7"), (10 ** 6, "第8–15天",
                                                                   "days 8–15"))


def _bare(name: str) -> str:
    s = str(name).strip()
    return s[:-1] if s.endswith("市") and len(s) > 2 else s


def city_key(name) -> str:
    """One key for both spellings of a city (the English name where known)."""
    s = _bare(name)
    return _ZH_EN.get(s, s)


def city_en(name) -> str:
    """The English name where known, else the name as written (charts: Latin glyphs)."""
    return city_key(name)


def city_label(name) -> str:
    """``杭州 Hangzhou`` for a known city, else the name as written."""
    key = city_key(name)
    zh = CITY_ZH.get(key)
    return f"{zh} {key}" if zh else str(name)


def region_label(name) -> str:
    """A source region: ``杭州 Hangzhou``, ``区外 outside``, ``全部 *``, else as written."""
    zh = _REGION_ZH.get(str(name))
    return f"{zh} {name}" if zh else city_label(name)


def source_label(region: str, sector: str, chinese: bool = False) -> str:
    """Words for one source tag: ``Hangzhou industry``, ``boundary inflow``, ``initial state``
    (``chinese``: with the Chinese words first)."""
    region, sector = str(region), str(sector)
    if sector == "ic" or region == "initial":
        en, zh = "initial state", "初始场"
    elif sector == "bc" or region == "boundary":
        en, zh = "boundary inflow", "边界输送"
    else:
        en = f"{city_en(region)} {sector}"
        zh = f"{CITY_ZH.get(city_key(region), _REGION_ZH.get(region, region))}" \
             f"{SECTOR_ZH.get(sector, sector)}"
    return f"{zh} {en}" if chinese else en


def band_of(end_hours: int) -> int:
    """Index in :data:`BANDS` of a lead window ending at ``end_hours``."""
    return next(i for i, (last, _, _) in enumerate(BANDS) if end_hours <= last)
