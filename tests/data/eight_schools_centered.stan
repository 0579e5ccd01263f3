// The centered eight-schools model: its funnel makes NUTS diverge in some fits (for --exclude-divergent).
data {
  int<lower=0> J;
  array[J] real<lower=0> sigma;
  array[J] real y;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[J] theta;
}
model {
  mu ~ normal(0, 5);
  tau ~ normal(0, 5);
  theta ~ normal(mu, tau);
  y ~ normal(theta, sigma);
}
