// Draws the centered eight-schools model's parameters from its prior, then the data given them.
data {
  int<lower=0> J;
  array[J] real<lower=0> sigma;
}
generated quantities {
  real mu = normal_rng(0, 5);
  real<lower=0> tau = abs(normal_rng(0, 5));
  vector[J] theta = to_vector(normal_rng(rep_vector(mu, J), tau));
  array[J] real y = normal_rng(theta, sigma);
}
