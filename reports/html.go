package reports

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

//go:embed templates/report.html.tmpl
var templates embed.FS

var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"add":    func(a, b int) int { return a + b },
	"join":   strings.Join,
	"dur":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"num":    num,
	"figure": figure,
	"fig":    fig,
	"ratio": func(r, lo, hi float64) string {
		if math.IsNaN(r) {
			return "-"
		}
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return fmt.Sprintf("%.3f", r)
		}
		return fmt.Sprintf("%.3f [%.3f, %.3f]", r, lo, hi)
	},
	"verdictClass": func(v string) string {
		if v == "skip" {
			return "info"
		}
		return v
	},
}).ParseFS(templates, "templates/report.html.tmpl"))

// WriteHTML writes the report as one self-contained page.
func WriteHTML(w io.Writer, r *Report) error {
	return page.Execute(w, r)
}

// figure formats a compared figure in its unit: durations for the
// nanosecond figures, plain numbers otherwise.
func figure(v float64, unit string) string {
	if strings.HasPrefix(unit, "p") && strings.HasSuffix(unit, "-ns") || strings.HasSuffix(unit, "ns/op") {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "-"
		}
		return time.Duration(v).Round(durationPrecision(v)).String()
	}
	return num(v)
}

// num formats a figure with three significant digits and an SI suffix.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// fig renders one summary of a row: the median, and its interval when
// there is one. kind is "ns" (a duration), "rate" or "count".
func fig(r ScenarioRow, name, kind string) string {
	s, ok := r.Get(name)
	if !ok {
		return "-"
	}
	f := func(v float64) string {
		if kind == "ns" {
			return time.Duration(v).Round(durationPrecision(v)).String()
		}
		return num(v)
	}
	out := f(s.Median)
	if s.Lo != nil && s.Hi != nil && kind != "count" {
		out += " [" + f(*s.Lo) + ", " + f(*s.Hi) + "]"
	}
	return out
}

// durationPrecision keeps three significant digits of a duration.
func durationPrecision(ns float64) time.Duration {
	p := time.Duration(1)
	for ns >= 1000 {
		ns /= 10
		p *= 10
	}
	return p
}
