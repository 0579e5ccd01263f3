// A classic SBC blind spot: the likelihood is missing, so lambda's posterior is its prior and its
// ranks are uniform. The log_lik test quantity catches it; functions of the parameters alone
// (log_lambda) and quantities drawn from an RNG (y_rep_mean) cannot.
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
}
generated quantities {
  real log_lik = poisson_lpmf(y | lambda);
  real y_rep_mean = mean(to_vector(poisson_rng(rep_vector(lambda, N))));
}
