{#-
    The incremental rule of the delivery marts (deliveries, delivery_items, delivery_sources).
    The model int_delivery_days_to_rebuild lists, once per run and before any mart changes,
    the client-days to rebuild: days with a source row from a load newer than the newest the
    marts have seen, and days holding a delivery built from a source reloaded since. Each
    mart first deletes those days (the pre-hook delete_delivery_days: a day that now has no
    delivery, because its rows were cancelled or moved, must not keep its old one), then
    inserts them rebuilt from all of their rows, old and new, as a full refresh would build
    them; every other day is left as it is. A re-sent row merges into the delivery it
    repeats, and an app delivery that gains its history row becomes one delivery with both
    lineages.
-#}
{% macro incremental_delivery_days(days) -%}
    {%- if is_incremental() -%}
        and (client_code, delivery_date) in (
            select
                rebuilt.client_code,
                rebuilt.delivery_date
            from {{ days }} as rebuilt
        )
    {%- endif -%}
{%- endmacro %}


{#- The newest load the delivery marts have seen (-1 when they are not built: every row is
    newer). -#}
{% macro delivery_marts_watermark(deliveries) -%}
    {%- if deliveries is none -%}
        select -1::bigint as load_id
    {%- else -%}
        select coalesce(max(last_load_id), 0) as load_id
        from {{ deliveries }}
    {%- endif -%}
{%- endmacro %}


{#- The client-days of the deliveries built from the sources listed in the CTE `sources`
    (source_file, source_sheet), read from the bridge delivery_sources (none when it is
    not built). -#}
{% macro delivery_days_from_sources(bridge, sources) -%}
    {%- if bridge is none -%}
        select
            null::text as client_code,
            null::date as delivery_date
        from {{ sources }}
        where false
    {%- else -%}
        select
            bridge.client_code,
            bridge.delivery_date
        from {{ bridge }} as bridge
        inner join {{ sources }} as sources
            on
                bridge.source_file = sources.source_file
                and bridge.source_sheet = sources.source_sheet
    {%- endif -%}
{%- endmacro %}


{#- The pre-hook of each incremental delivery mart: delete the days it rebuilds. Deleting
    deliveries cascades to their items and bridge rows. -#}
{% macro delete_delivery_days(days) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where (client_code, delivery_date) in (
            select
                rebuilt.client_code,
                rebuilt.delivery_date
            from {{ days }} as rebuilt
        )
    {%- endif -%}
{%- endmacro %}


{#-
    A foreign key that survives rebuilds: dbt rebuilds a table model by swapping in a new
    table and dropping the old one with CASCADE, which drops the foreign keys of tables that
    point at it (the incremental delivery marts are not rebuilt, so theirs would be lost).
    Run as a post-hook, this adds the constraint whenever it is missing; PostgreSQL checks
    every existing row when it is added.
-#}
{% macro ensure_foreign_key(columns, to_relation, to_columns, on_delete=none) -%}
    {%- set name = this.identifier ~ '_' ~ (columns | join('_')) ~ '_fkey' -%}
    do $fk$
    begin
        if not exists (
            select 1 from pg_constraint
            where conrelid = '{{ this }}'::regclass and conname = '{{ name }}'
        ) then
            alter table {{ this }}
                add constraint {{ name }}
                foreign key ({{ columns | join(', ') }})
                references {{ to_relation }} ({{ to_columns | join(', ') }})
                {{ 'on delete ' ~ on_delete if on_delete else '' }};
        end if;
    end
    $fk$
{%- endmacro %}
