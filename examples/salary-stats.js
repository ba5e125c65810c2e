// Statistics over private data: salaries go in encrypted, only aggregates come out.
// The operator never sees the individual salaries (nor the aggregates); the caller gets
// count, mean, median, percentiles and a gender pay gap, never a single person's row.
//
//   clave deploy examples/salary-stats.js --name salary-stats
//   clave invoke salary-stats --data @examples/data/salaries.json
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = (sorted.length - 1) * p;
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return Math.round(sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo));
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    mean: sorted.length ? Math.round(sum / sorted.length) : null,
    median: percentile(sorted, 0.5),
    p10: percentile(sorted, 0.1),
    p90: percentile(sorted, 0.9),
  };
}

export default {
  async fetch(request) {
    const { employees = [], min_group = 3 } = await request.json();
    const valid = employees.filter((e) => Number.isFinite(e.salary) && e.salary > 0);
    const byGroup = {};
    for (const e of valid) {
      const g = String(e.gender ?? "unspecified");
      (byGroup[g] ??= []).push(e.salary);
    }
    const groups = {};
    for (const [g, vals] of Object.entries(byGroup)) {
      // Small groups would reveal individuals: suppress them.
      groups[g] = vals.length >= min_group ? summary(vals) : { count: vals.length, suppressed: true };
    }
    const f = groups.female, m = groups.male;
    const gap = f && m && !f.suppressed && !m.suppressed ? Math.round((1 - f.median / m.median) * 1000) / 10 : null;
    return Response.json({
      overall: summary(valid.map((e) => e.salary)),
      groups,
      median_gender_gap_percent: gap,
      rejected_rows: employees.length - valid.length,
    });
  },
};
