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
