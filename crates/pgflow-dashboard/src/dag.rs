//! A flow's DAG drawn as SVG, laid out here in Rust: longest-path layering
//! (a step sits one layer right of its deepest parent), then a few sweeps of
//! barycentric ordering (each step moves toward the mean position of its
//! neighbours in the adjacent layer) to untangle edges. Map steps are drawn
//! as a stack of cards, steps with a condition carry an `if` mark whose
//! tooltip shows it. On a run page each node carries its step's status as a
//! CSS class and `data-step`, which the page's script updates live.

use std::collections::HashMap;

use maud::{html, Markup};

/// One step as the drawing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The step slug.
    pub slug: String,
    /// Parent slugs (each must be an earlier node).
    pub deps: Vec<String>,
    /// A map step.
    pub is_map: bool,
    /// Its condition, in words (e.g. `if {"a": true}`), when it has one.
    pub condition: Option<String>,
    /// Its status on a run page (`None` on a flow page).
    pub status: Option<String>,
    /// A second line of text (task counts, timing).
    pub detail: String,
}

/// Where each node goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Layer (column) of each node, in input order.
    pub layer: Vec<usize>,
    /// Position within its layer (row), in input order.
    pub order: Vec<usize>,
    /// Number of layers.
    pub layers: usize,
    /// Size of the largest layer.
    pub max_rows: usize,
}

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 46.0;
const GAP_X: f64 = 60.0;
const GAP_Y: f64 = 22.0;
const PAD: f64 = 14.0;
const SWEEPS: usize = 4;

/// Layers by longest path, rows by barycentric sweeps. Nodes must come in
/// topological order (parents first), as a flow's steps do; unknown parents
/// are ignored.
pub fn layout(nodes: &[Node]) -> Layout {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.slug.as_str(), i))
        .collect();
    let parents: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.deps
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut layer = vec![0usize; nodes.len()];
    for i in 0..nodes.len() {
        layer[i] = parents[i]
            .iter()
            .filter(|&&p| p < i)
            .map(|&p| layer[p] + 1)
            .max()
            .unwrap_or(0);
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(i);
        }
    }
    // rows[l] = node indices of layer l, in display order.
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, &l) in layer.iter().enumerate() {
        rows[l].push(i);
    }
    let mut order = vec![0usize; nodes.len()];
    let renumber = |rows: &Vec<Vec<usize>>, order: &mut Vec<usize>| {
        for row in rows {
            for (pos, &i) in row.iter().enumerate() {
                order[i] = pos;
            }
        }
    };
    renumber(&rows, &mut order);
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let range: Vec<usize> = if down {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        for l in range {
            let neighbours = if down { &parents } else { &children };
            let mut keyed: Vec<(f64, usize, usize)> = rows[l]
                .iter()
                .map(|&i| {
                    let ns = &neighbours[i];
                    let key = if ns.is_empty() {
                        order[i] as f64
                    } else {
                        ns.iter().map(|&n| order[n] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (key, order[i], i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[l] = keyed.into_iter().map(|(_, _, i)| i).collect();
            renumber(&rows, &mut order);
        }
    }
    let max_rows = rows.iter().map(Vec::len).max().unwrap_or(0);
    Layout {
        layer,
        order,
        layers,
        max_rows,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// The SVG of a DAG (escaped by maud like any other markup).
pub fn svg(nodes: &[Node]) -> Markup {
    let layout = layout(nodes);
    let rows_in = |l: usize| layout.layer.iter().filter(|&&x| x == l).count();
    let height = PAD * 2.0 + layout.max_rows as f64 * (NODE_H + GAP_Y) - GAP_Y;
    let width = PAD * 2.0 + layout.layers as f64 * (NODE_W + GAP_X) - GAP_X;
    // Each layer is centred vertically.
    let pos = |i: usize| {
        let l = layout.layer[i];
        let offset = (layout.max_rows - rows_in(l)) as f64 * (NODE_H + GAP_Y) / 2.0;
        (
            PAD + l as f64 * (NODE_W + GAP_X),
            PAD + offset + layout.order[i] as f64 * (NODE_H + GAP_Y),
        )
    };
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.slug.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for dep in &node.deps {
            if let Some(&p) = index.get(dep.as_str()) {
                let (px, py) = pos(p);
                let (cx, cy) = pos(i);
                let (x1, y1) = (px + NODE_W, py + NODE_H / 2.0);
                let (x2, y2) = (cx - 4.0, cy + NODE_H / 2.0);
                let mid = (x1 + x2) / 2.0;
                edges.push(format!(
                    "M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}"
                ));
            }
        }
    }
    html! {
        svg class="dag" xmlns="http://www.w3.org/2000/svg" role="img"
            width=(format!("{width:.0}")) height=(format!("{height:.0}"))
            viewBox=(format!("0 0 {width:.0} {height:.0}")) {
            title { "Step graph" }
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0,0 L10,5 L0,10 z" class="arrowhead" {}
                }
            }
            @for d in &edges {
                path class="edge" d=(d) marker-end="url(#arrow)" {}
            }
            @for (i, node) in nodes.iter().enumerate() {
                @let (x, y) = pos(i);
                @let status = node.status.as_deref().unwrap_or("none");
                g class=(format!("node status-{status}")) data-step=(node.slug)
                    transform=(format!("translate({x:.1},{y:.1})")) {
                    title { (node.slug) @if node.is_map { " (map)" } " — " (status)
                        @if let Some(c) = &node.condition { "\n" (c) } }
                    @if node.is_map {
                        rect class="stack" x="6" y="-6" rx="6" width=(NODE_W) height=(NODE_H) {}
                        rect class="stack" x="3" y="-3" rx="6" width=(NODE_W) height=(NODE_H) {}
                    }
                    rect class="card" rx="6" width=(NODE_W) height=(NODE_H) {}
                    text class="slug" x="10" y="19" { (shorten(&node.slug, 20)) }
                    text class="detail" x="10" y="36" data-detail=(node.slug) {
                        @if node.is_map { "map · " } (node.detail)
                    }
                    @if node.condition.is_some() {
                        g class="cond" transform=(format!("translate({:.1},8)", NODE_W - 26.0)) {
                            rect width="20" height="14" rx="3" {}
                            text x="10" y="11" text-anchor="middle" { "if" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(slug: &str, deps: &[&str]) -> Node {
        Node {
            slug: slug.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            is_map: false,
            condition: None,
            status: None,
            detail: String::new(),
        }
    }

    #[test]
    fn layers_follow_the_longest_path() {
        // a -> b -> c, a -> c: c sits after b, not beside it.
        let nodes = [node("a", &[]), node("b", &["a"]), node("c", &["a", "b"])];
        let layout = layout(&nodes);
        assert_eq!(layout.layer, vec![0, 1, 2]);
        assert_eq!(layout.layers, 3);
    }

    #[test]
    fn barycentric_sweeps_uncross_edges() {
        // Roots r0, r1; children listed crosswise: c0 under r1, c1 under r0.
        let nodes = [
            node("r0", &[]),
            node("r1", &[]),
            node("c0", &["r1"]),
            node("c1", &["r0"]),
        ];
        let layout = layout(&nodes);
        // Each child ends up in its parent's row: no crossing.
        assert_eq!(layout.order[3], layout.order[0]);
        assert_eq!(layout.order[2], layout.order[1]);
    }

    #[test]
    fn svg_escapes_and_marks_maps_and_conditions() {
        let mut n = node("x", &[]);
        n.is_map = true;
        n.condition = Some("if {\"<b>\": 1}".into());
        n.status = Some("started".into());
        let svg = svg(&[n]).into_string();
        assert!(svg.contains("status-started"));
        assert!(svg.contains("class=\"stack\""));
        assert!(svg.contains("class=\"cond\""));
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
    }
}
