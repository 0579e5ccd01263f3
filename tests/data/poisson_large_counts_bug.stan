// Poisson counts with a bug that only large counts reach: for a mean count above 50 the model switches
// to a normal approximation of the counts' sum, and gives it one count's sd, sqrt(lambda), instead of the
// sum's, sqrt(N * lambda). The prior puts the rate near 5, so prior SBC almost never sees the bug; data
// of large counts always do, and posterior SBC conditional on them flags it.
data {
  int<lower=0> N;
  array[N] int<lower=0> y;
}
transformed data {
  int large = N > 0 && mean(to_vector(y)) > 50;
}
parameters {
  real<lower=0> lambda;
}
model {
  lambda ~ lognormal(log(5), 0.7);
  if (large) {
    sum(y) ~ normal(N * lambda, sqrt(lambda));
  } else {
    y ~ poisson(lambda);
  }
}
generated quantities {
  array[N] int y_rep = poisson_rng(rep_vector(lambda, N));
}
