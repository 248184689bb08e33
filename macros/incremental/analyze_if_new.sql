{#-
    A post-hook of the incremental intermediate and staging tables: ANALYZE the table when
    it has no statistics yet (just created: a first build or a full refresh; CREATE TABLE AS
    gathers none, and a join planned on a table without statistics can take a nested loop
    over 500k rows for minutes). An incremental build changes a few thousand rows of an
    analysed table and leaves it to autovacuum.
-#}
{% macro analyze_if_new() -%}
    do $analyze$
    begin
        if not exists (
            select 1 from pg_stats
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
        ) then
            execute 'analyze {{ this }}';
        end if;
    end
    $analyze$
{%- endmacro %}
