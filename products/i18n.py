"""The report's languages: one place for every translated text (config ``report.language``).

API (small on purpose; every report section and figure uses only this):

- :data:`LANGUAGES` = ``("zh", "en", "both")``.
- :func:`tr` ``(msg, lang, **fields) -> str``: ``msg`` is either a dict ``{"en": ..., "zh": ...}``
  (write new captions and sentences this way, both keys required) or an English string, looked up
  in the catalogue :data:`ZH` (English text -> Chinese text; an English string missing from the
  catalogue is a :class:`MissingTranslation` error in ``zh``/``both``, never a silent English
  fallback). ``fields`` are ``str.format`` fields of the text; a field value may itself be a
  ``{"en", "zh"}`` dict (e.g. a date written differently per language). ``lang`` ``"en"`` gives the
  English text, ``"zh"`` the Chinese, ``"both"`` Chinese + ``sep`` + English (``sep`` default
  ``" / "``; for short labels: headings, table headers, legend entries).
- :func:`parts` ``(msg, lang, **fields) -> list[(code, text)]``: the same text as one
  ``(language code, text)`` per shown language (``both``: Chinese first, then English) for blocks
  (captions, sentences, paragraphs) that the template draws one per line with ``lang=`` set.
- :func:`fill` ``(msg, **fields) -> {"en", "zh"}``: the message with its fields filled in both
  languages (to build a sentence in a section and translate it later); :func:`joinmsg` joins such
  messages per language; :func:`known` ``(text)``: a text that comes from data (a column of an
  input file, a flag name): translated when the catalogue has it, otherwise shown as it is.
- :func:`fmt_month`, :func:`fmt_date`: ``YYYY-MM`` / ``YYYY-MM-DD`` as ``{"en", "zh"}`` fields
  (zh: ``2025年1月``, ``2025年1月1日``).
- :func:`district_name` ``(name_en, lang, names_zh)``: a district's name for the language
  (zh: Chinese characters from the districts GeoJSON ``name``; both: ``荔湾区 Liwan``);
  :func:`district_msg` the same as a ``{"en", "zh"}`` message.

Numbers: both languages write digits with ``,`` grouping by three and ``.`` as decimal mark (the
convention of the Guangzhou and national statistical yearbooks); what differs is in the texts
themselves: percent written ``12.3%`` in Chinese and ``12.3 %`` in English, units ``千吨`` (kt)
and ``吨`` (t), dates ``2025年1月1日``.

Templates use the Jinja filters ``tr`` (= :func:`tr`), ``tp`` (= :func:`parts`), ``tv`` (a table
cell: ``{"en", "zh"}`` dicts translated, any other value shown as it is), ``fill`` and ``joinmsg``
that ``products.report.environment`` binds to the report's language.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh", "en", "both")
SEP = " / "


class MissingTranslation(KeyError):
    """An English text without a Chinese entry in the catalogue (add it to ``ZH``)."""


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"report language {lang!r} unknown; use one of {', '.join(LANGUAGES)} "
                         "(config report.language).")


def _one(msg, code: str) -> str:
    """The text of ``msg`` in one language code (``en`` or ``zh``)."""
    if isinstance(msg, Mapping):
        try:
            return str(msg[code])
        except KeyError:
            raise MissingTranslation(f"text {dict(msg)!r} has no {code!r} entry") from None
    msg = "" if msg is None else str(msg)
    if code == "en" or msg == "":
        return msg
    try:
        return ZH[msg]
    except KeyError:
        raise MissingTranslation(f"no Chinese text for {msg!r}: add it to products.i18n.ZH") from None


def _fill(text: str, code: str, fields: dict) -> str:
    if not fields:
        return text
    return text.format(**{k: _one(v, code) if isinstance(v, Mapping) else v for k, v in fields.items()})


def codes(lang: str) -> tuple[str, ...]:
    """The language codes shown for ``lang``: ``("zh",)``, ``("en",)`` or ``("zh", "en")``."""
    _check_lang(lang)
    return ("zh", "en") if lang == "both" else (lang,)


def parts(msg, lang: str, **fields) -> list[tuple[str, str]]:
    """``msg`` as ``[(code, text), ...]``, one per shown language (Chinese first)."""
    return [(c, _fill(_one(msg, c), c, fields)) for c in codes(lang)]


def tr(msg, lang: str, sep: str = SEP, **fields) -> str:
    """``msg`` (a ``{"en", "zh"}`` dict or a catalogue English text) in ``lang`` (zh, en, both)."""
    texts = [t for _, t in parts(msg, lang, **fields)]
    if len(texts) == 2 and texts[0] == texts[1]:   # e.g. a site id or a number: once is enough
        return texts[0]
    return sep.join(texts)


def fill(msg, **fields) -> dict:
    """``msg`` with ``fields`` filled, as ``{"en": ..., "zh": ...}``."""
    return {c: _fill(_one(msg, c), c, fields) for c in ("en", "zh")}


def joinmsg(msgs, sep: str = ", ") -> dict:
    """Messages (dicts or catalogue texts) joined per language with ``sep``."""
    msgs = list(msgs)
    return {c: sep.join(_one(m, c) for m in msgs) for c in ("en", "zh")}


def known(text) -> dict:
    """A text from data (a column name, a flag): its catalogue translation, or itself."""
    text = "" if text is None else str(text)
    return {"en": text, "zh": ZH.get(text, text)}


def fmt_month(month: str) -> dict:
    """``YYYY-MM`` as ``{"en": "2025-01", "zh": "2025年1月"}``."""
    y, m = str(month)[:7].split("-")
    return {"en": str(month), "zh": f"{int(y)}年{int(m)}月"}


def fmt_date(day) -> dict:
    """A date (``YYYY-MM-DD``, ``YYYYMMDD`` or ISO time) as ``{"en": <as given>, "zh": "2025年1月1日"}``;
    with a time of day the Chinese keeps it after the date (``2025年1月1日 04:00``)."""
    s = str(day)
    d, _, rest = s.replace("T", " ").partition(" ")
    digits = d.replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return {"en": s, "zh": s}
    zh = f"{int(digits[:4])}年{int(digits[4:6])}月{int(digits[6:])}日"
    return {"en": s, "zh": f"{zh} {rest[:5]}".strip() if rest else zh}


def district_msg(name_en, names_zh: Mapping[str, str] | None = None):
    """A district (or the city row) as ``{"en": "Liwan", "zh": "荔湾区"}``; the name as given when no
    Chinese name is known (names come from input files: they are not in the catalogue)."""
    name_en = str(name_en)
    zh = dict(names_zh or {}).get(name_en) or CITY_ZH.get(name_en)
    return name_en if zh is None else {"en": name_en, "zh": zh}


def district_name(name_en: str, lang: str, names_zh: Mapping[str, str] | None = None) -> str:
    """A district (or the city row) in ``lang``: Chinese characters from ``names_zh`` (name_en ->
    name, the districts GeoJSON), the city ``Guangzhou`` as 广州市; a name without a Chinese entry
    stays as given (names come from input files: they are not in the catalogue)."""
    msg = district_msg(name_en, names_zh)
    return msg if isinstance(msg, str) else tr(msg, lang, sep=" ")


#: the city row of the district tables
CITY_ZH = {"Guangzhou": "广州市"}

#: English text -> Chinese text. Keys are exactly the English the report shows; ``{name}`` fields
#: must appear in both. Keep sorted by section.
ZH: dict[str, str] = {
    # --- page frame -------------------------------------------------------------------------------
    "Guangzhou CO2 flux report {month}": "广州市二氧化碳通量月报 {month}",
    "Inversion period {start} – {end} · generated {generated} · flux product":
        "反演时段 {start} – {end} · 生成于 {generated} · 通量产品",
    "Problems in this run": "本次运行的问题",
    "What did not make it into the inversion": "未进入反演的数据",
    "(count per reason):": "（按原因计数）：",
    "(receptors and observations, count per reason):": "（受体与观测，按原因计数）：",
    "Demo run: all inputs come from the synthetic Guangzhou world (station positions are demo "
    "placements); the truth is known.":
        "演示运行：全部输入来自合成的广州演示世界（站点位置为演示布设），真值已知。",
    "Nothing: every receptor has a footprint and every selected observation was used.":
        "无：每个受体都有足迹，每个选定的观测都已使用。",
    "Not recorded by this run's inversion (rerun it).": "本次运行的反演未记录此项（请重新运行反演）。",
    "Missing": "缺失项",
    "Nothing missing.": "无缺失项。",
    "Provenance": "溯源信息",
    "config sha256": "配置 sha256",
    "packages:": "软件包：",
    "flux product {file}": "通量产品 {file}",
    "figure {file}": "图 {file}",
    "characters without a glyph in the shipped CJK font: {chars} (products/fonts/README.md)":
        "随附中文字体中没有字形的字符：{chars}（products/fonts/README.md）",
    "not given": "未给出",
    # --- city total and districts -----------------------------------------------------------------
    "City total": "全市总量",
    "Prior": "先验",
    "Posterior": "后验",
    "Uncertainty reduction": "不确定性降低",
    "Truth (demo world)": "真值（演示世界）",
    "{a} ± {b} kt": "{a} ± {b} 千吨",
    "{a} kt": "{a} 千吨",
    "{p} %": "{p}%",
    "The demo world's true city total is {truth} kt CO₂. The prior gives {prior} kt (error {prel} %); "
    "the posterior gives {post} ± {sig} kt (error {rel} %, {z} σ: {within}).":
        "演示世界的真实全市总量为 {truth} 千吨 CO₂。先验给出 {prior} 千吨（误差 {prel}%）；后验给出 "
        "{post} ± {sig} 千吨（误差 {rel}%，{z} σ：{within}）。",
    " The inversion removed {p} % of the prior's error.": "反演消除了先验误差的 {p}%。",
    " The inversion moved the total away from the truth ({p} % more error than the prior).":
        "反演使总量偏离了真值（误差比先验多 {p}%）。",
    "within 1 σ": "在 1σ 以内",
    "within 2 σ": "在 2σ 以内",
    "outside 2 σ": "超出 2σ",
    "demo truth (truth_t) for the city total": "全市总量的演示真值（truth_t）",
    "Districts": "各区",
    "CO₂ emitted over the period, kt; σ are 1-σ, exact posterior uncertainties of the district sums.":
        "本时段的 CO₂ 排放量，单位千吨；σ 为 1σ，即各区总量的精确后验不确定性。",
    "district": "区",
    "prior (kt)": "先验（千吨）",
    "prior σ (kt)": "先验 σ（千吨）",
    "posterior (kt)": "后验（千吨）",
    "posterior σ (kt)": "后验 σ（千吨）",
    "change (%)": "变化（%）",
    "σ reduction (%)": "σ 降低（%）",
    "truth (kt)": "真值（千吨）",
    "Download the district table (CSV, kt CO₂)": "下载各区表格（CSV，千吨 CO₂）",
    # --- budgets ----------------------------------------------------------------------------------
    "Carbon budgets": "碳预算",
    "Year {year}; months inverted: {months}; not covered: {gaps}.":
        "{year}年；已反演月份：{months}；未覆盖：{gaps}。",
    "Year {year}; months inverted: {months}.": "{year}年；已反演月份：{months}。",
    "Budgets are kt CO₂ per calendar year (config budgets). The budget is pro-rated evenly over the "
    "hours of the year: the covered hours (the inverted periods of this year, up to this report) get "
    "B·T_c/T_year. σ of the emissions is that of the sum of the months with correlated months (one "
    "district bias for the whole year, carried from month to month; docs/year.md). “To date” (1 January to the end of this period) and “year at this rate” extrapolate "
    "the covered mean rate to uncovered hours; their σ is scaled alike and does not include the error "
    "of that extrapolation. P(exceed) = Φ((year at this rate − budget)/σ). See docs/report.md.":
        "预算单位为每自然年千吨 CO₂（配置项 budgets）。预算按全年小时数平均分摊：已覆盖的小时（本年内"
        "截至本报告已反演的时段）分得 B·T_c/T_year。排放的 σ 为各月之和的 σ，计入月份间的相关（各区偏差"
        "全年相同，逐月带入下月；见 docs/year.md）。“年初至今”（1月1日至本时段结束）与“按此速率全年”把已覆盖时段的平均速率外推到未覆盖的"
        "小时；其 σ 按同一比例缩放，不含外推本身的误差。超出概率 P = Φ((按此速率全年 − 预算)/σ)。"
        "详见 docs/report.md。",
    "budget: no inversion results for {month} (extrapolated from covered hours)":
        "预算：{month} 没有反演结果（按已覆盖小时外推）",
    "budget (kt/yr)": "预算（千吨/年）",
    "covered": "已覆盖",
    "{h} h ({p} %)": "{h} 小时（{p}%）",
    "emitted (kt)": "排放（千吨）",
    "pro-rated budget (kt)": "分摊预算（千吨）",
    "used (%)": "已用（%）",
    "to date (kt)": "年初至今（千吨）",
    "budget to date (kt)": "年初至今预算（千吨）",
    "year at this rate (kt)": "按此速率全年（千吨）",
    "P(exceed)": "超出概率",
    "status": "状态",
    "within budget": "在预算内",
    "likely over budget": "可能超出预算",
    "uncertain": "不确定",
    "Share of the pro-rated budget used per district (± 1σ); dashed: 100 %.":
        "各区已用分摊预算的比例（± 1σ）；虚线：100%。",
    "Download the budget comparison (CSV)": "下载预算对比（CSV）",
    # --- flash revisions (products.annual.revision_section) ----------------------------------------
    "Flash reports: revisions": "快报修订",
    "Emission rates (kt CO₂ per day) of each flash report of this month and of the complete month; "
    "revision = complete month − flash, in % of the flash and in the flash's σ (docs/year.md).":
        "本月各期快报与完整月的排放速率（千吨 CO₂/日）；修订 = 完整月 − 快报，以快报的百分比和快报的 σ "
        "表示（见 docs/year.md）。",
    "cut-off": "快报截止日",
    "flash (kt/day)": "快报（千吨/日）",
    "final (kt/day)": "完整月（千吨/日）",
    "revision (%)": "修订（%）",
    "revision (flash σ)": "修订（快报 σ）",
    # --- figures ----------------------------------------------------------------------------------
    "Flux maps": "通量分布图",
    "Prior CO₂ flux, mean over the inversion period, with district boundaries and stations (triangles).":
        "先验 CO₂ 通量（反演时段平均），含区界与站点（三角形）。",
    "Posterior CO₂ flux, same period and colour scale as the prior.": "后验 CO₂ 通量，时段与色标同先验。",
    "Posterior − prior flux (red: the inversion increased emissions).": "后验 − 先验通量（红色：反演增加了排放）。",
    "Uncertainty reduction 1 − σ_post/σ_prior of the period-mean flux on coarse blocks.":
        "时段平均通量在粗网格块上的不确定性降低 1 − σ_post/σ_prior。",
    "District emissions over the period: prior ± σ, posterior ± σ and, in the demo, the truth.":
        "本时段各区排放：先验 ± σ、后验 ± σ，演示中还有真值。",
    "Observed − modelled CO₂ before (prior) and after (posterior) the inversion.":
        "反演前（先验）与反演后（后验）的观测 − 模拟 CO₂。",
    "Fraction of the selection-window hours present per site and day.": "各站点每日选择窗口内有数据的小时比例。",
    "Stations: observed and modelled": "站点：观测与模拟",
    "{site} ({name}): observed, prior-modelled and posterior-modelled CO₂ with background.":
        "{site}（{name}）：观测、先验模拟与后验模拟的 CO₂ 及背景值。",
    "time series of site {site} (no observation used)": "站点 {site} 的时间序列（未使用任何观测）",
    # --- station contributions --------------------------------------------------------------------
    "What each station contributes": "各站点的贡献",
    "Exact posterior σ of every district and of the city recomputed from the same inversion with one "
    "station left out, and with one station alone. A station's value is the uncertainty reduction "
    "(1 − σ_post/σ_prior) lost without it; stations that see the same air share their value, so the "
    "losses do not add up to the total.":
        "用同一反演重新计算每个区和全市的精确后验 σ：每次去掉一个站点，以及每次只用一个站点。一个站点的"
        "价值是去掉它后损失的不确定性降低（1 − σ_post/σ_prior）；观测同一气团的站点分享其价值，因此各站"
        "的损失相加不等于总量。",
    "station": "站点",
    "name": "名称",
    "city σ reduction with this station alone (%)": "仅用此站时全市 σ 降低（%）",
    "city σ reduction lost without it (points)": "去掉此站后全市 σ 降低的损失（百分点）",
    "district it constrains most": "约束最强的区",
    "σ reduction lost there (points)": "该区 σ 降低的损失（百分点）",
    "Uncertainty reduction (points of the prior σ) lost when the station is left out, per district and "
    "for the city.": "去掉该站点时各区和全市损失的不确定性降低（先验 σ 的百分点）。",
    # --- cross-validation -------------------------------------------------------------------------
    "Cross-validation: predicting observations the inversion did not see": "交叉验证：预测反演未使用的观测",
    "Each site in turn, and each block of days, is left out; the posterior of the other observations "
    "predicts the left-out enhancements above the prior background (exact, from the same inversion). "
    "A posterior RMSE below the prior's is skill that needs no truth: it is how a real network is "
    "checked. Bias is observed − model; χ²_r ≈ 1 when the prior and observation errors are right. See "
    "docs/inversion.md, “Cross-validation”.":
        "依次留出每个站点和每个日期段；由其余观测得到的后验预测被留出观测相对先验背景的增量（精确计算，"
        "来自同一反演）。后验 RMSE 低于先验即为无需真值的预测能力：真实观测网络就是这样检验的。偏差为"
        "观测 − 模拟；先验与观测误差设定正确时 χ²_r ≈ 1。详见 docs/inversion.md “Cross-validation”一节。",
    "left out": "留出",
    "n": "数量",
    "RMSE prior → posterior (ppm)": "RMSE 先验 → 后验（ppm）",
    "bias prior → posterior (ppm)": "偏差 先验 → 后验（ppm）",
    "correlation prior → posterior": "相关系数 先验 → 后验",
    "χ²_r": "χ²_r",
    "every site (pooled)": "全部站点（合并）",
    "every day (pooled)": "全部日期（合并）",
    "{n} of {m} sites": "{m} 个站点中的 {n} 个",
    "{n} of {m} blocks of days": "{m} 个日期段中的 {n} 个",
    "Posterior better than the prior (RMSE): {what}.": "后验优于先验（RMSE）：{what}。",
    "Not done: {what}.": "未进行：{what}。",
    # --- power ------------------------------------------------------------------------------------
    "Power emission factors": "电力排放因子",
    "No power factor outputs available.": "没有电力排放因子输出。",
    "Hourly consumption-based electricity emission factor per district (kg CO₂/kWh).":
        "各区逐小时消费侧电力排放因子（千克 CO₂/千瓦时）。",
    "power factor heat map ({file})": "电力排放因子热图（{file}）",
    "power summary table ({file})": "电力汇总表（{file}）",
    "power summary table unreadable ({file}: {err})": "电力汇总表无法读取（{file}：{err}）",
    "month": "月份",
    "hours": "小时数",
    "generation mwh": "发电量 MWh",
    "load mwh": "负荷 MWh",
    "production emissions t": "生产侧排放 吨",
    "consumption emissions t": "消费侧排放 吨",
    "production factor": "生产侧因子",
    "consumption factor": "消费侧因子",
    "consumption factor min": "消费侧因子最小值",
    "consumption factor max": "消费侧因子最大值",
    "consumption factor mean": "消费侧因子均值",
    "production factor mean": "生产侧因子均值",
    "peak hour local": "峰值时刻（当地）",
    "import share": "外区输入占比",
    "external share": "外部电网占比",
    # --- diagnostics ------------------------------------------------------------------------------
    "Diagnostics": "诊断",
    "observations used": "使用的观测数",
    "observations with a footprint": "有足迹的观测数",
    "state size": "状态向量维数",
    "reduced χ² (≈ 1 when errors are consistent)": "约化 χ²（误差一致时 ≈ 1）",
    "degrees of freedom for signal (DOFS)": "信号自由度（DOFS）",
    "solver": "求解器",
    "solve time (s)": "求解时间（秒）",
    "innovation χ² = dᵀ(H Q Hᵀ + R)⁻¹d, degrees of freedom": "新息 χ² = dᵀ(H Q Hᵀ + R)⁻¹d，自由度",
    "p-value P(χ² ≥ observed) (a problem below {p}); P(χ² ≤ observed)":
        "p 值 P(χ² ≥ 观测值)（低于 {p} 视为问题）；P(χ² ≤ 观测值)",
    "innovation screen (|d| > {k} σ, action {action}): flagged, excluded":
        "新息筛查（|d| > {k} σ，处理方式 {action}）：标记数，剔除数",
    "Largest normalised residuals (innovation d = observed − prior model over its prior-predicted "
    "σ = √((H Q Hᵀ)ᵢᵢ + Rᵢᵢ)):":
        "最大的归一化残差（新息 d = 观测 − 先验模拟，除以其先验预测的 σ = √((H Q Hᵀ)ᵢᵢ + Rᵢᵢ)）：",
    "site": "站点",
    "time (UTC)": "时间（UTC）",
    "observed (ppm)": "观测（ppm）",
    "prior model (ppm)": "先验模拟（ppm）",
    "innovation (ppm)": "新息（ppm）",
    "σ (ppm)": "σ（ppm）",
    "normalised": "归一化",
    "used": "是否使用",
    "yes": "是",
    "no (screened)": "否（已筛除）",
    "Residuals per site (ppm):": "各站点残差（ppm）：",
    "prior_mean": "先验均值",
    "prior_std": "先验标准差",
    "posterior_mean": "后验均值",
    "posterior_std": "后验标准差",
    "Scaling factors (relative change of a district's diffuse anthropogenic prior; amplitude of a "
    "total-conserving diurnal-profile harmonic of a sector; relative change of a day's biospheric "
    "uptake):":
        "缩放因子（某区面源人为先验的相对变化；某部门保持总量的日变化廓线谐波振幅；某日生物圈吸收的相对"
        "变化）：",
    "factor": "因子",
    "kind": "类型",
    "profile": "日变化廓线",
    "biosphere_day": "逐日生物圈",
    "posterior change (%)": "后验变化（%）",
    "σ prior (%)": "先验 σ（%）",
    "σ posterior (%)": "后验 σ（%）",
    # --- data availability and losses -------------------------------------------------------------
    "Data availability": "数据可用性",
    "selected hours": "选定小时数",
    "expected hours": "应有小时数",
    "coverage (%)": "覆盖率（%）",
    "used in inversion": "用于反演",
    "first (UTC)": "最早（UTC）",
    "last (UTC)": "最晚（UTC）",
    "observations of site {site} (no selected hour)": "站点 {site} 的观测（没有选定的小时）",
    "stage": "环节",
    "reason": "原因",
    "count": "数量",
    "receptors": "受体",
    "station hours (selection window)": "站点小时（选择窗口）",
    "raw files": "原始文件",
    "observations (selected.csv → inversion)": "观测（selected.csv → 反演）",
    "HYSPLIT failed": "HYSPLIT 运行失败",
    "HYSPLIT failed (receptor)": "HYSPLIT 运行失败（受体）",
    "receptor without footprint (not a HYSPLIT failure)": "受体没有足迹（非 HYSPLIT 失败）",
    "no hourly value (no usable raw data)": "没有小时值（没有可用的原始数据）",
    "not selected (no QC flag)": "未选中（无质控标记）",
    "no receptor": "没有受体",
    "no receptor or no footprint": "没有受体或没有足迹",
    "outside the period": "在时段之外",
    # --- figure labels (products/maps.py) ---------------------------------------------------------
    "{start} to {end} UTC": "{start} 至 {end} UTC",
    "Prior CO₂ flux, mean {period}": "先验 CO₂ 通量，{period} 平均",
    "Posterior CO₂ flux, mean {period}": "后验 CO₂ 通量，{period} 平均",
    "Posterior − prior flux (colours saturate at the 99.5th percentile)":
        "后验 − 先验通量（颜色在第 99.5 百分位处饱和）",
    "Uncertainty reduction 1 − σ_post/σ_prior (period-mean flux, coarse blocks)":
        "不确定性降低 1 − σ_post/σ_prior（时段平均通量，粗网格块）",
    "fraction": "比例",
    "prior ± σ": "先验 ± σ",
    "posterior ± σ": "后验 ± σ",
    "truth (demo)": "真值（演示）",
    "kt CO₂ over the period": "本时段 CO₂（千吨）",
    "District CO₂ emissions": "各区 CO₂ 排放",
    "observed": "观测",
    "prior model": "先验模拟",
    "posterior model": "后验模拟",
    "background (prior)": "背景（先验）",
    "background (posterior)": "背景（后验）",
    "CO₂ (ppm)": "CO₂（ppm）",
    "{site}: observed and modelled CO₂ ({n} hours used)": "{site}：观测与模拟 CO₂（使用 {n} 小时）",
    "prior: mean {m}, sd {s}": "先验：均值 {m}，标准差 {s}",
    "posterior: mean {m}, sd {s}": "后验：均值 {m}，标准差 {s}",
    "observed − modelled (ppm)": "观测 − 模拟（ppm）",
    "Residuals, all sites": "残差（全部站点）",
    "day of month (UTC)": "日期（UTC）",
    "Selected hours / window hours": "选定小时数 / 窗口小时数",
    "pro-rated budget": "分摊预算",
    "% of pro-rated budget used": "已用分摊预算（%）",
    "Budget used over the covered hours (± 1σ)": "已覆盖小时内的预算使用（± 1σ）",
    "points of σ reduction lost": "损失的 σ 降低（百分点）",
    "Uncertainty reduction lost without each station": "去掉各站点后损失的不确定性降低",
    # --- flash and annual reports (products.annual: flash.html, annual.html) ----------------------
    "Inversion period {start} – {end} · generated {generated}": "反演时段 {start} – {end} · 生成于 {generated}",
    "flash (kt)": "快报（千吨）",
    "flash σ (kt)": "快报 σ（千吨）",
    "σ if months were independent (kt)": "各月独立时的 σ（千吨）",
    "correlated months (district factors shared by the year)": "月份相关（各区因子全年共享）",
    "correlated months": "月份相关",
    "independent months": "月份独立",
    "error model": "误差模型",
    "not covered": "未覆盖",
    "none": "无",
    "territorial (kt)": "属地排放（千吨）",
    "σ (kt)": "σ（千吨）",
    "own power plants (kt)": "本区电厂（千吨）",
    "consumed electricity (kt)": "用电排放（千吨）",
    "consumption-based (kt)": "消费端排放（千吨）",
    "No accounting.csv for {months}: the two accountings of the year are not summed (re-run those "
    "months' rule accounting).":
        "{months} 没有 accounting.csv：全年的两种核算不予求和（请重新运行这些月份的 accounting 规则）。",
    "No flux product for {lacking}: the map averages {have} only.":
        "{lacking} 没有通量产品：该图只平均了 {have}。",
    "previous year (kt/day)": "上一年（千吨/日）",
    "this year (kt/day)": "本年（千吨/日）",
    "σ of the change (%)": "变化的 σ（%）",
    "month alone": "单月反演",
    "year (correlated months)": "全年（月份相关）",
    "kt CO₂ per inverted period": "每个反演时段的 CO₂（千吨）",
    "Monthly district totals ± 1σ, {year} (months without results are empty)":
        "{year}年逐月各区总量 ± 1σ（没有结果的月份为空）",
    "posterior flux, mean over {n} h of {year}": "后验通量，{year}年 {n} 小时平均",
    "posterior − prior": "后验 − 先验",
    "lon (°E)": "经度（°E）",
    "lat (°N)": "纬度（°N）",
}
