{#-
    The incremental rule of the delivery marts (deliveries, delivery_items, delivery_sources).
    Each is built by delete+insert on (client_code, delivery_date): a run rebuilds every
    client and day that has a source row from a load newer than the newest one the table
    has seen (its max(last_load_id)), and leaves every other day as it is. A day is rebuilt
    from all of its rows, old and new, so a re-sent row merges into the delivery it repeats
    and an app delivery that gains its history row becomes one delivery with both lineages,
    exactly as a full refresh would build them.
-#}
{% macro incremental_delivery_days(classified) -%}
    {%- if is_incremental() -%}
        and (client_code, delivery_date) in (
            select
                newer.client_code,
                newer.delivery_date
            from {{ classified }} as newer
            where newer.last_load_id > (
                select coalesce(max(seen.last_load_id), 0) from {{ this }} as seen
            )
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
