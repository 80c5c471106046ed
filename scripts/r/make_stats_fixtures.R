#!/usr/bin/env Rscript
# Writes the inputs (CSV) and R's answers (JSON) that crates/stats and crates/cli test against.
#   Rscript scripts/r/make_stats_fixtures.R [OUTDIR]   (default crates/stats/tests/fixtures)
# Every expected number below comes from survival / cmprsk / stats, never typed by hand.
# Each case: {"dataset", "command", "args", "expected"}; "expected" has the CLI's JSON shape
# (docs/statistics.md). Group levels: numeric sort when all labels are numbers, else C-locale sort.
suppressPackageStartupMessages({
  library(survival); library(cmprsk); library(jsonlite)
})
Sys.setlocale("LC_COLLATE", "C")
args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[1] else "crates/stats/tests/fixtures"
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

# ---------------------------------------------------------------- datasets
write_data <- function(d, name) {
  write.csv(d, file.path(outdir, name), row.names = FALSE, na = "NA")
  # Re-read exactly what the Rust side will read.
  read.csv(file.path(outdir, name), stringsAsFactors = FALSE)
}
lung_d <- with(survival::lung, data.frame(time, status = status - 1, sex, age,
  ph_ecog = ph.ecog, ph_karno = ph.karno, wt_loss = wt.loss, inst))
veteran_d <- survival::veteran
mgus2_d <- with(survival::mgus2, data.frame(id, age, sex = as.character(sex),
  male = as.integer(sex == "M"), hgb, creat, mspike, futime, death,
  etime = ifelse(pstat == 0, futime, ptime),
  event = ifelse(pstat == 0, 2 * death, 1)))
set.seed(20240605)
n <- 400
g <- sample(c("A", "B", "C"), n, replace = TRUE)
x1 <- round(rnorm(n), 1)
x2 <- rbinom(n, 1, 0.4)
lin <- 0.5 * x1 + 0.7 * x2 + ifelse(g == "B", 0.4, 0)
ev_time <- pmin(12, floor(rexp(n, 0.12 * exp(lin))))   # integer times 0..12: heavy ties, some 0
cens <- sample(0:14, n, replace = TRUE)
time <- pmin(ev_time, cens)
status <- as.integer(ev_time <= cens)
cause <- ifelse(status == 1, ifelse(runif(n) < plogis(0.3 + 0.8 * x2), 1L, 2L), 0L)
tied_d <- data.frame(time, status, cause, g, x1, x2, x_col = x1 + 2 * x2,
  age = sample(40:80, n, replace = TRUE))
tied_d$x1[c(5, 17)] <- NA  # rows dropped as na.omit
edge_d <- data.frame(
  grp = c(rep("half", 6), rep("lastcens", 5), rep("noevent", 3), rep("zero", 8)),
  time = c(1, 2, 3, 4, 5, 6,  1, 2, 3, 4, 5,  2, 3, 5,  0, 0, 1, 1, 1, 2, 3, 3),
  status = c(1, 1, 1, 0, 1, 0,  1, 0, 0, 0, 0,  0, 0, 0,  1, 0, 1, 1, 0, 1, 0, 1))
lr_edge_d <- data.frame(
  grp = c("a", "a", "a", "a", "b", "b", "b", "c", "c", "d", "d"),
  time = c(2, 4, 6, 8, 3, 5, 7, 5, 9, 1, 1.5),
  status = c(1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0))
# Monotone likelihood: every death at times 1..5 has x = 1, later subjects x = 0.
sep_d <- data.frame(time = 1:12, status = c(1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1),
  x = c(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0),
  z = c(0.3, -1.2, 0.8, 0.1, -0.4, 1.5, 0.2, -0.9, 0.6, -0.2, 1.1, -0.7))
small_d <- data.frame(grp = c(rep("x", 9), rep("y", 11)),
  value = c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30,
            0.88, 0.65, 0.60, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29, 0.31, 0.45))
small_d$value[small_d$value == 1.06][2] <- 1.07
small_d$value[small_d$value == 1.29][2] <- 1.28

data <- list(
  lung.csv = write_data(lung_d, "lung.csv"),
  veteran.csv = write_data(veteran_d, "veteran.csv"),
  mgus2.csv = write_data(mgus2_d, "mgus2.csv"),
  tied.csv = write_data(tied_d, "tied.csv"),
  edge.csv = write_data(edge_d, "edge.csv"),
  lr_edge.csv = write_data(lr_edge_d, "lr_edge.csv"),
  separation.csv = write_data(sep_d, "separation.csv"),
  small.csv = write_data(small_d, "small.csv"))

# ---------------------------------------------------------------- helpers
num <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }
arr <- function(x) I(num(x))
scalar <- function(x) if (length(x) == 0 || !is.finite(x)) NA else as.numeric(x)
levels_of <- function(x) {
  u <- unique(x)
  if (is.numeric(x)) as.character(sort(u)) else sort(u, method = "radix")
}
prepare <- function(ds, cols) {
  d <- data[[ds]][, cols, drop = FALSE]
  kept <- na.omit(d)
  list(d = kept, dropped = nrow(d) - nrow(kept))
}

km_curve <- function(t, e, conf_type, median_ci) {
  fit <- survfit(Surv(t, e) ~ 1, conf.type = conf_type)
  q <- quantile(fit, 0.5)
  med <- unname(q$quantile)
  ci <- c(unname(q$lower), unname(q$upper))
  if (median_ci == "symmetric") {
    ci <- c(NA, NA)
    t45 <- unname(quantile(fit, 0.45, conf.int = FALSE))
    t55 <- unname(quantile(fit, 0.55, conf.int = FALSE))
    if (!is.na(med) && !is.na(t45) && !is.na(t55) && t55 > t45) {
      density <- (0.55 - 0.45) / (t55 - t45)
      se_s <- summary(fit, times = med)$std.err
      se_med <- se_s / density
      z <- qnorm(0.975)
      ci <- c(med - z * se_med, med + z * se_med)
    }
  }
  list(n = fit$n, events = sum(fit$n.event), median = scalar(med), median_ci = arr(ci),
       times = arr(fit$time), n_risk = arr(fit$n.risk), n_event = arr(fit$n.event),
       n_censor = arr(fit$n.censor), survival = arr(fit$surv),
       std_err = arr(fit$surv * fit$std.err), lower = arr(fit$lower), upper = arr(fit$upper))
}

km_case <- function(ds, time, event, group = NULL, conf_type = "log", median_ci = "band") {
  p <- prepare(ds, c(time, event, group))
  d <- p$d
  groups <- list()
  if (is.null(group)) {
    groups[[1]] <- c(list(group = NA), km_curve(d[[time]], d[[event]], conf_type, median_ci))
  } else {
    for (lev in levels_of(d[[group]])) {
      s <- d[as.character(d[[group]]) == lev, ]
      groups[[length(groups) + 1]] <- c(list(group = lev),
        km_curve(s[[time]], s[[event]], conf_type, median_ci))
    }
  }
  a <- list(time = time, event = event, conf_type = conf_type, median_ci = median_ci)
  if (!is.null(group)) a$group <- group
  list(dataset = ds, command = "km", args = a,
       expected = list(groups = groups, dropped = p$dropped))
}

logrank_case <- function(ds, time, event, group) {
  p <- prepare(ds, c(time, event, group)); d <- p$d
  levs <- levels_of(d[[group]])
  f <- factor(as.character(d[[group]]), levels = levs)
  sd <- survdiff(Surv(d[[time]], d[[event]]) ~ f)
  df <- sum(sd$exp > 0) - 1
  groups <- lapply(seq_along(levs), function(i) list(group = levs[i],
    n = as.numeric(sd$n[i]), observed = sd$obs[i], expected = sd$exp[i]))
  list(dataset = ds, command = "logrank",
       args = list(time = time, event = event, group = group),
       expected = list(chisq = sd$chisq, df = df,
         p = if (df > 0) pchisq(sd$chisq, df, lower.tail = FALSE) else NA,
         groups = groups, dropped = p$dropped))
}

cox_case <- function(ds, time, event, covariates, ties = "efron") {
  p <- prepare(ds, c(time, event, covariates)); d <- p$d
  form <- as.formula(paste0("Surv(", time, ", ", event, ") ~ ", paste(covariates, collapse = " + ")))
  warns <- character(0)
  fit <- withCallingHandlers(coxph(form, data = d, ties = ties),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  b <- coef(fit)
  se <- sqrt(diag(fit$var)); se_full <- rep(NA, length(b)); se_full[!is.na(b)] <- se[!is.na(b)]
  inf_vars <- integer(0)
  for (w in warns) if (grepl("Loglik converged before variable", w))
    inf_vars <- as.integer(strsplit(trimws(sub(";.*", "", sub(".*variable", "", w))), ",")[[1]])
  z <- qnorm(0.975)
  coefs <- lapply(seq_along(b), function(j) {
    row <- list(name = covariates[j], coef = scalar(b[j]), hr = scalar(exp(b[j])),
      se = scalar(se_full[j]), z = scalar(b[j] / se_full[j]),
      p = scalar(2 * pnorm(-abs(b[j] / se_full[j]))),
      hr_ci = arr(exp(b[j] + c(-z, z) * se_full[j])))
    if (is.na(b[j])) row$note <- "collinear with other covariates: coefficient not estimable (NA in R)"
    if (j %in% inf_vars) row$note <- sprintf("Loglik converged before variable %d; coefficient may be infinite", j)
    row
  })
  df <- sum(!is.na(b))
  lr <- 2 * (fit$loglik[2] - fit$loglik[1])
  list(dataset = ds, command = "cox",
       args = list(time = time, event = event, covariates = I(covariates), ties = ties),
       expected = list(n = fit$n, events = fit$nevent, coefficients = coefs,
         loglik = arr(fit$loglik), lr_chisq = lr, lr_df = df,
         lr_p = pchisq(lr, df, lower.tail = FALSE), wald_chisq = unname(fit$wald.test),
         score_chisq = unname(fit$score), iterations = fit$iter,
         converged = !any(grepl("Ran out of iterations", warns)),
         warnings = I(warns), dropped = p$dropped))
}

cuminc_case <- function(ds, time, event, group = NULL) {
  p <- prepare(ds, c(time, event, group)); d <- p$d
  if (is.null(group)) {
    levs <- "1"
    ci <- cuminc(d[[time]], d[[event]])
  } else {
    levs <- levels_of(d[[group]])
    ci <- cuminc(d[[time]], d[[event]], factor(as.character(d[[group]]), levels = levs))
  }
  causes <- sort(unique(d[[event]][d[[event]] != 0]))
  curves <- list()
  for (k in causes) for (lev in levs) {
    cur <- ci[[paste(lev, k)]]
    m <- length(cur$time)
    idx <- if (m > 2) seq(3, m - 1, by = 2) else integer(0)
    curves[[length(curves) + 1]] <- list(group = if (is.null(group)) NA else lev,
      cause = k, times = arr(cur$time[idx]), cif = arr(cur$est[idx]), variance = arr(cur$var[idx]))
  }
  tests <- list()
  if (!is.null(ci$Tests)) for (i in seq_len(nrow(ci$Tests))) {
    st <- ci$Tests[i, "stat"]
    tests[[i]] <- list(cause = as.numeric(rownames(ci$Tests)[i]),
      stat = if (st < 0) NA else st, df = ci$Tests[i, "df"],
      p = if (st < 0) NA else ci$Tests[i, "pv"])
  }
  a <- list(time = time, event = event)
  if (!is.null(group)) a$group <- group
  list(dataset = ds, command = "cuminc", args = a,
       expected = list(curves = curves, gray_test = tests, dropped = p$dropped))
}

finegray_case <- function(ds, time, event, cause, covariates) {
  p <- prepare(ds, c(time, event, covariates)); d <- p$d
  fit <- crr(d[[time]], d[[event]], as.matrix(d[, covariates, drop = FALSE]),
             failcode = cause, cencode = 0)
  se <- sqrt(diag(fit$var)); z <- qnorm(0.975)
  coefs <- lapply(seq_along(fit$coef), function(j) list(name = covariates[j],
    coef = unname(fit$coef[j]), shr = exp(unname(fit$coef[j])), se = se[j],
    z = unname(fit$coef[j]) / se[j], p = 2 * pnorm(-abs(unname(fit$coef[j]) / se[j])),
    shr_ci = arr(exp(unname(fit$coef[j]) + c(-z, z) * se[j]))))
  list(dataset = ds, command = "finegray",
       args = list(time = time, event = event, cause = cause, covariates = I(covariates)),
       expected = list(n = fit$n, cause = cause, coefficients = coefs,
         converged = fit$converged, loglik = arr(c(fit$loglik.null, fit$loglik)),
         dropped = p$dropped))
}

table_of <- function(d, row, col) table(factor(as.character(d[[row]]), levels = levels_of(d[[row]])),
                                       factor(as.character(d[[col]]), levels = levels_of(d[[col]])))
chisq_case <- function(ds, row, col, correct = FALSE) {
  p <- prepare(ds, c(row, col))
  r <- suppressWarnings(chisq.test(table_of(p$d, row, col), correct = correct))
  list(dataset = ds, command = "chisq", args = list(row = row, col = col, correct = correct),
       expected = list(statistic = unname(r$statistic), df = unname(r$parameter),
         p = r$p.value, dropped = p$dropped))
}
fisher_case <- function(ds, row, col) {
  p <- prepare(ds, c(row, col))
  tab <- table_of(p$d, row, col)
  r <- fisher.test(tab)
  or <- if (all(dim(tab) == 2)) scalar(unname(r$estimate)) else NA
  list(dataset = ds, command = "fisher", args = list(row = row, col = col),
       expected = list(p = r$p.value, odds_ratio = or, dropped = p$dropped))
}
wilcoxon_case <- function(ds, value, group) {
  p <- prepare(ds, c(value, group)); d <- p$d
  levs <- levels_of(d[[group]])
  r <- suppressWarnings(wilcox.test(d[[value]][as.character(d[[group]]) == levs[1]],
                                    d[[value]][as.character(d[[group]]) == levs[2]]))
  list(dataset = ds, command = "wilcoxon", args = list(value = value, group = group),
       expected = list(statistic = unname(r$statistic), p = r$p.value, dropped = p$dropped))
}

# ---------------------------------------------------------------- cases
cases <- list(
  km_case("lung.csv", "time", "status"),
  km_case("lung.csv", "time", "status", "sex"),
  km_case("lung.csv", "time", "status", "sex", "log-log"),
  km_case("lung.csv", "time", "status", "sex", "plain", "symmetric"),
  km_case("lung.csv", "time", "status", "ph_ecog", "log", "symmetric"),
  km_case("veteran.csv", "time", "status", "celltype"),
  km_case("veteran.csv", "time", "status", "trt", "log-log", "symmetric"),
  km_case("mgus2.csv", "futime", "death", "sex"),
  km_case("tied.csv", "time", "status", "g"),
  km_case("tied.csv", "time", "status", "g", "plain"),
  km_case("tied.csv", "time", "status", "g", "log-log", "symmetric"),
  km_case("edge.csv", "time", "status", "grp"),
  km_case("edge.csv", "time", "status", "grp", "log-log"),
  km_case("edge.csv", "time", "status", "grp", "plain"),
  km_case("edge.csv", "time", "status", "grp", "log", "symmetric"),
  logrank_case("lung.csv", "time", "status", "sex"),
  logrank_case("lung.csv", "time", "status", "ph_ecog"),
  logrank_case("veteran.csv", "time", "status", "celltype"),
  logrank_case("mgus2.csv", "futime", "death", "sex"),
  logrank_case("tied.csv", "time", "status", "g"),
  logrank_case("edge.csv", "time", "status", "grp"),
  logrank_case("lr_edge.csv", "time", "status", "grp"),
  cox_case("lung.csv", "time", "status", c("age", "sex", "ph_ecog", "wt_loss")),
  cox_case("lung.csv", "time", "status", c("age", "sex", "ph_ecog", "wt_loss"), "breslow"),
  cox_case("veteran.csv", "time", "status", c("trt", "karno", "diagtime", "age", "prior")),
  cox_case("mgus2.csv", "futime", "death", c("age", "male", "hgb", "creat")),
  cox_case("tied.csv", "time", "status", c("x1", "x2", "age")),
  cox_case("tied.csv", "time", "status", c("x1", "x2", "age"), "breslow"),
  cox_case("tied.csv", "time", "status", c("x1", "x2", "x_col")),
  cox_case("separation.csv", "time", "status", c("x", "z")),
  cox_case("separation.csv", "time", "status", c("x", "z"), "breslow"),
  cuminc_case("mgus2.csv", "etime", "event", "sex"),
  cuminc_case("mgus2.csv", "etime", "event"),
  cuminc_case("tied.csv", "time", "cause", "g"),
  cuminc_case("tied.csv", "time", "cause"),
  finegray_case("mgus2.csv", "etime", "event", 1, c("age", "male", "hgb")),
  finegray_case("mgus2.csv", "etime", "event", 2, c("age", "male")),
  finegray_case("tied.csv", "time", "cause", 1, c("x1", "x2")),
  finegray_case("tied.csv", "time", "cause", 2, c("x1", "x2", "age")),
  chisq_case("lung.csv", "sex", "ph_ecog"),
  chisq_case("veteran.csv", "trt", "prior"),
  chisq_case("veteran.csv", "trt", "prior", TRUE),
  chisq_case("veteran.csv", "celltype", "prior", TRUE),
  chisq_case("tied.csv", "g", "x2"),
  fisher_case("veteran.csv", "trt", "prior"),
  fisher_case("lung.csv", "sex", "status"),
  fisher_case("lung.csv", "sex", "ph_ecog"),
  fisher_case("tied.csv", "x2", "g"),
  fisher_case("veteran.csv", "celltype", "trt"),
  wilcoxon_case("lung.csv", "age", "sex"),
  wilcoxon_case("veteran.csv", "karno", "trt"),
  wilcoxon_case("tied.csv", "x1", "x2"),
  wilcoxon_case("small.csv", "value", "grp"))

json <- toJSON(cases, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = FALSE)
writeLines(json, file.path(outdir, "cases.json"))
cat(sprintf("wrote %d cases to %s\n", length(cases), outdir))
