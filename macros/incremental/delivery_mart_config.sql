{#-
    The incremental rule of the delivery marts (deliveries, delivery_items, delivery_sources),
    and their config, set here once. The model int_delivery_days_to_rebuild lists, once per
    run and before any mart changes, the client-days to rebuild: days with a source row from
    a load newer than the newest the marts have seen, and days holding a delivery built from
    a source reloaded since. Each mart first deletes those days (the pre-hook
    delete_delivery_days: a day that now has no delivery, because its rows were cancelled or
    moved, must not keep its old one), then inserts them rebuilt from all of their rows, old
    and new, as a full refresh would build them (incremental_delivery_days); every other day
    is left as it is. A re-sent row merges into the delivery it repeats, and an app delivery
    that gains its history row becomes one delivery with both lineages.

    `primary_key` are the mart's key columns (post-hook ensure_primary_key: added after the
    insert, not declared in the contract); `foreign_key` is a column of the mart that
    references the same column of the model `references` (post-hook ensure_foreign_key, with
    `on_delete`); `indexes` are added to the one on (client_code, delivery_date).
-#}
{% macro delivery_mart_config(primary_key, foreign_key, references, on_delete=none,
    indexes=[]) -%}
    {%- set key = "['" ~ foreign_key ~ "']" -%}
    {%- set foreign_key_args = key ~ ", ref('" ~ references ~ "'), " ~ key
        ~ (", '" ~ on_delete ~ "'" if on_delete else '') -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['client_code', 'delivery_date'],
        on_schema_change='fail',
        indexes=[{'columns': ['client_code', 'delivery_date']}] + indexes,
        pre_hook=["{{ delete_delivery_days(ref('int_delivery_days_to_rebuild')) }}"],
        post_hook=["{{ ensure_primary_key(" ~ primary_key ~ ") }}",
            "{{ ensure_foreign_key(" ~ foreign_key_args ~ ") }}",
            "{{ comment_model_state() }}"]
    ) }}
{%- endmacro %}
