// A classic SBC blind spot: the likelihood is missing, so lambda's posterior is its prior and its
// ranks are uniform. The log_lik test quantity catches it.
data {
  int<lower=0> N;
  array[N] int<lower=0> y;
}
parameters {
  real<lower=0> lambda;
}
model {
  lambda ~ normal(0, 6.44787);
}
generated quantities {
  real log_lik = poisson_lpmf(y | lambda);
}
