// The bundled Poisson example with more quantities to test: a function of the parameter
// (log_lambda), a data-dependent vector (log_lik_each) and an RNG quantity (y_rep_mean).
data {
  int<lower=0> N;
  array[N] int<lower=0> y;
}
parameters {
  real<lower=0> lambda;
}
transformed parameters {
  real log_lambda = log(lambda);
}
model {
  lambda ~ normal(0, 6.44787);
  y ~ poisson(lambda);
}
generated quantities {
  real log_lik = poisson_lpmf(y | lambda);
  vector[2] log_lik_each = [poisson_lpmf(y[1] | lambda), poisson_lpmf(y[2] | lambda)]';
  real y_rep_mean = mean(to_vector(poisson_rng(rep_vector(lambda, N))));
}
