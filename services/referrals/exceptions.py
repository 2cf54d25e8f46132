"""referrals's errors (registered remote errors; see weintervene.errors)."""
