"""The trader's scenarios: each module proves one money rule, named for what it proves.

Issue 12's items and where each is proven (every test here failed on the code before
its fix):

1. One coin, one hedge: ``test_config_refuses_what_it_cannot_hedge_safely``.
2. The bearish sell-down keeps the spot hedged: ``test_bearish_sell_down_keeps_spot_hedged``.
3. A basis roll needs its APR net of fees: ``test_basis_roll_needs_net_entry_apr``.
4. Equity is counted once: ``tests/integration/test_daemon_emulator.py::
   test_account_equity_counts_the_unrealized_pnl_once`` (the Binance emulator) and the
   contract suite's ``test_margin_wallet_total_leaves_out_the_unrealized_pnl_...``,
   ``tests/unit/test_ccxt_margin_balances.py`` (ccxt's own parser on raw answers).
5. The guard and the pre-trade check agree: (a), (c)
   ``test_config_refuses_what_it_cannot_hedge_safely``; (b)
   ``test_pre_trade_check_agrees_with_the_guard`` (20 cycles, the guard's actions
   counted); (d) ``test_paper_liquidation_uses_binance_formula``.
6. One bad symbol errors one pair: ``test_one_bad_symbol_errors_one_pair`` (a fake venue)
   and ``test_one_bad_symbol_errors_one_pair_on_the_emulator`` (suspended, delisted).
7. Markets reload for real: ``tests/integration/test_daemon_emulator.py::
   test_markets_refresh_asks_the_exchange_for_a_changed_amount_step``.
8. Margin moves like orders: ``test_margin_transfer_is_never_sent_twice``.
9. The report tells the truth: ``test_report_values_basis_spot_at_spot_price``,
   ``test_report_units_are_coins``, ``test_hedge_effectiveness_is_the_variance_measure``,
   ``test_report_fees_in_other_assets``.
10. Small things: ``test_every_strategy_honours_interval_rebalancing``,
    ``test_no_naked_residual_short``, ``test_hedge_mode_net_long_refused``,
    ``test_bad_book_sends_nothing``, ``test_paper_dated_future_settles_at_expiry``,
    ``test_funding_cursor_moves_after_commit``.
"""
