/**
 * Reading the Grafana dashboard for tests: every query of every panel (rows included), and the
 * PromQL Grafana would send for it.
 */
export interface PanelQuery {
  panel: string;
  expr: string;
}

interface Panel {
  title?: string;
  type?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

export function dashboardPanels(dashboard: { panels: Panel[] }): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export function dashboardQueries(dashboard: { panels: Panel[] }): PanelQuery[] {
  return dashboardPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title ?? '?', expr: t.expr ?? '' })));
}

/**
 * Grafana's built-in interval variables, as Grafana would fill them for a short test range with
 * a 1 s scrape interval (4 × scrape interval at least, for $__rate_interval). Any other variable
 * is an error: the test would not know what to put there.
 */
export function grafanaToPromQL(expr: string): string {
  const out = expr
    .replace(/\$\{?__rate_interval\}?/g, '30s')
    .replace(/\$\{?__interval\}?/g, '15s')
    .replace(/\$\{?__range\}?/g, '5m');
  if (out.includes('$')) throw new Error(`unknown Grafana variable in ${expr}`);
  return out;
}
